"""Binance USD-M's public ``GET /fapi/v1/exchangeInfo`` on loopback, shaped like the documented
response (derivatives/usds-margined-futures/market-data/rest-api/Exchange-Information)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from tests.venues.harness import FakeVenue


def binance_symbol(
    symbol: str,
    base: str,
    quote: str,
    step: str,
    min_qty: str,
    market_step: str | None = None,
    market_min_qty: str | None = None,
    min_notional: str = "5",
    tick: str = "0.10",
    contract_type: str = "PERPETUAL",
    status: str = "TRADING",
) -> dict[str, Any]:
    """One ``symbols`` entry with the filters the documentation lists, in its order."""
    return {
        "symbol": symbol,
        "pair": symbol,
        "contractType": contract_type,
        "deliveryDate": 4133404800000,
        "onboardDate": 1569398400000,
        "status": status,
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": base,
        "quoteAsset": quote,
        "marginAsset": quote,
        "pricePrecision": 2,
        "quantityPrecision": 3,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "settlePlan": 0,
        "triggerProtect": "0.0500",
        "filters": [
            {"filterType": "PRICE_FILTER", "maxPrice": "4529764", "minPrice": "556.80",
             "tickSize": tick},
            {"filterType": "LOT_SIZE", "maxQty": "1000", "minQty": min_qty, "stepSize": step},
            {"filterType": "MARKET_LOT_SIZE", "maxQty": "120", "minQty": market_min_qty or min_qty,
             "stepSize": market_step or step},
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
            {"filterType": "MIN_NOTIONAL", "notional": min_notional},
            {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500",
             "multiplierDecimal": "4"},
        ],
        "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT",
                       "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
    }  # fmt: skip


@dataclass
class BinanceInstruments(FakeVenue):
    # Raw entries: a test may put a malformed one among them.
    symbols: list[Any] = field(default_factory=list)

    def routes(self) -> list[BaseRoute]:
        return [Route("/fapi/v1/exchangeInfo", self._exchange_info)]

    async def _exchange_info(self, request: Request) -> JSONResponse:
        await self.record(request)
        return JSONResponse(
            {
                "exchangeFilters": [],
                "rateLimits": [
                    {"interval": "MINUTE", "intervalNum": 1, "limit": 2400,
                     "rateLimitType": "REQUEST_WEIGHT"},
                ],
                "serverTime": 1565613908500,
                "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": 0}],
                "symbols": self.symbols,
                "timezone": "UTC",
            },
            headers={"X-MBX-USED-WEIGHT-1M": str(len(self.rest_calls))},
        )  # fmt: skip
