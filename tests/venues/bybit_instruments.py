"""Bybit's public ``GET /v5/market/instruments-info`` on loopback, as v5/market/instrument
documents it: ``category`` required, ``limit`` 1 to 1000 (500 by default), pages chained by
an opaque ``nextPageCursor`` ("" on the last page)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from tests.venues.harness import FakeVenue


def bybit_instrument(
    symbol: str,
    base: str,
    quote: str,
    qty_step: str,
    min_qty: str,
    min_notional: str = "5",
    tick: str = "0.10",
    contract_type: str = "LinearPerpetual",
    status: str = "Trading",
) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "contractType": contract_type,
        "status": status,
        "baseCoin": base,
        "quoteCoin": quote,
        "launchTime": "1585526400000",
        "deliveryTime": "0",
        "deliveryFeeRate": "",
        "priceScale": "2",
        "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
        "priceFilter": {"minPrice": "0.10", "maxPrice": "1999999.80", "tickSize": tick},
        "lotSizeFilter": {
            "maxOrderQty": "1190.000",
            "minOrderQty": min_qty,
            "qtyStep": qty_step,
            "postOnlyMaxOrderQty": "1190.000",
            "maxMktOrderQty": "500.000",
            "minNotionalValue": min_notional,
        },
        "unifiedMarginTrade": True,
        "fundingInterval": 480,
        "settleCoin": quote,
        "copyTrading": "both",
        "upperFundingRate": "0.00375",
        "lowerFundingRate": "-0.00375",
    }


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset={offset}".encode()).decode()


@dataclass
class BybitInstruments(FakeVenue):
    instruments: list[Any] = field(default_factory=list)
    # The most rows a page holds whatever the limit asked: pagination shows with few rows.
    page_size: int = 500

    def routes(self) -> list[BaseRoute]:
        return [Route("/v5/market/instruments-info", self._instruments)]

    async def _instruments(self, request: Request) -> JSONResponse:
        await self.record(request)
        query = request.query_params
        if query.get("category") not in ("spot", "linear", "inverse", "option"):
            return _error(10001, "params error: Category is invalid")
        try:
            limit = int(query.get("limit", "500"))
            offset = int(base64.urlsafe_b64decode(query["cursor"]).decode().split("=")[1]) if (
                "cursor" in query
            ) else 0  # fmt: skip
        except ValueError:
            return _error(10001, "params error: cursor or limit is invalid")
        if not 1 <= limit <= 1000:
            return _error(10001, "params error: limit must be 1 to 1000")
        end = offset + min(limit, self.page_size)
        rows = self.instruments[offset:end] if query["category"] == "linear" else []
        return JSONResponse(
            {
                "retCode": 0,
                "retMsg": "OK",
                "result": {
                    "category": query["category"],
                    "list": rows,
                    "nextPageCursor": _cursor(end) if end < len(self.instruments) else "",
                },
                "retExtInfo": {},
                "time": 1735809771618,
            }
        )


def _error(code: int, message: str) -> JSONResponse:
    return JSONResponse({"retCode": code, "retMsg": message, "result": {}, "retExtInfo": {},
                         "time": 1735809771618})  # fmt: skip
