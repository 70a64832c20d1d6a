"""Hyperliquid's public ``POST /info {"type": "meta"}`` on loopback (info-endpoint/perpetuals,
"Retrieve perpetuals metadata"): ``universe`` in asset-index order, with ``marginTables``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from tests.venues.harness import FakeVenue


def hl_asset(name: str, sz_decimals: int, delisted: bool = False) -> dict[str, Any]:
    asset: dict[str, Any] = {
        "name": name,
        "szDecimals": sz_decimals,
        "maxLeverage": 50,
        "marginTableId": 50,
    }
    if delisted:
        asset["isDelisted"] = True
    return asset


@dataclass
class HyperliquidInstruments(FakeVenue):
    universe: list[Any] = field(default_factory=list)

    def routes(self) -> list[BaseRoute]:
        return [Route("/info", self._info, methods=["POST"])]

    async def _info(self, request: Request) -> JSONResponse:
        call = await self.record(request)
        try:
            kind = json.loads(call.body).get("type")
        except (ValueError, AttributeError):
            return JSONResponse("Failed to deserialize the JSON body", status_code=422)
        if kind != "meta":
            return JSONResponse("Failed to deserialize the JSON body", status_code=422)
        return JSONResponse(
            {
                "universe": self.universe,
                "marginTables": [
                    [50, {"description": "", "marginTiers": [
                        {"lowerBound": "0.0", "maxLeverage": 50}]}],
                ],
            }
        )  # fmt: skip
