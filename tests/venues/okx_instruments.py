"""OKX's public ``GET /api/v5/public/instruments`` on loopback (docs-v5, "Get instruments"):
``instType`` required; SWAP rows as the documentation shows them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from tests.venues.harness import FakeVenue


def okx_swap(
    inst_id: str,
    ct_val: str,
    lot_sz: str,
    min_sz: str,
    tick_sz: str = "0.1",
    ct_type: str = "linear",
    state: str = "live",
) -> dict[str, Any]:
    base, quote = inst_id.split("-")[:2]
    return {
        "alias": "",
        "baseCcy": "",
        "category": "1",
        "ctMult": "1",
        "ctType": ct_type,
        "ctVal": ct_val,
        "ctValCcy": base if ct_type == "linear" else "USD",
        "expTime": "",
        "instFamily": f"{base}-{quote}",
        "instId": inst_id,
        "instType": "SWAP",
        "lever": "100",
        "listTime": "1606468572000",
        "lotSz": lot_sz,
        "maxIcebergSz": "100000000.0000000000000000",
        "maxLmtAmt": "20000000",
        "maxLmtSz": "100000000",
        "maxMktAmt": "",
        "maxMktSz": "30000",
        "maxStopSz": "30000",
        "maxTriggerSz": "100000000.0000000000000000",
        "maxTwapSz": "100000000.0000000000000000",
        "minSz": min_sz,
        "optType": "",
        "quoteCcy": "",
        "ruleType": "normal",
        "settleCcy": quote if ct_type == "linear" else base,
        "state": state,
        "stk": "",
        "tickSz": tick_sz,
        "uly": f"{base}-{quote}",
    }


@dataclass
class OkxInstruments(FakeVenue):
    instruments: list[Any] = field(default_factory=list)

    def routes(self) -> list[BaseRoute]:
        return [Route("/api/v5/public/instruments", self._instruments)]

    async def _instruments(self, request: Request) -> JSONResponse:
        await self.record(request)
        inst_type = request.query_params.get("instType")
        if not inst_type:
            body = {"code": "50014", "msg": "Parameter instType can not be empty.", "data": []}
            return JSONResponse(body, status_code=400)
        rows = [r for r in self.instruments if not isinstance(r, dict) or
                r.get("instType") == inst_type]  # fmt: skip
        return JSONResponse({"code": "0", "msg": "", "data": rows})
