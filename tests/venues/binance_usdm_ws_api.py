"""Binance USD-M's websocket order API (``ws-fapi``) on the fake trading account.

``order.place`` as the USD-M docs give it: ``{"id", "method", "params"}`` in, ``{"id",
"status", "result" | "error", "rateLimits"}`` out. The params are signed with HMAC-SHA256 over
every param but ``signature``, sorted by name. Key, signature, time, rate limit and filters
are the REST endpoint's own checks (``FakeBinanceTrading.refusal`` and ``_admit``), so the
socket and REST refuse alike; a 429 carries ``error.data.retryAfter`` (epoch ms).
"""

from __future__ import annotations

import json
import time
from typing import Any

from tests.venues.order_socket import FakeOrderSocket

WS_FAPI_PATH = "/ws-fapi/v1"
RATE_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
     "limit": 2400, "count": 1},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
     "limit": 300, "count": 1},
]  # fmt: skip


class WsFapi(FakeOrderSocket):
    def reply(self, venue: Any, raw: str, session: dict[str, Any]) -> str:
        return json.dumps(self.answer(venue, json.loads(raw)))

    def answer(self, venue: Any, request: dict[str, Any]) -> dict[str, Any]:
        request_id = request.get("id")
        if request.get("method") != "order.place":
            message = "Illegal characters found in parameter 'method'."
            return _failed(request_id, 400, -1100, message)
        params: dict[str, Any] = dict(request.get("params") or {})
        self.orders.append(dict(params))
        signature = str(params.pop("signature", ""))
        payload = "&".join(f"{name}={params[name]}" for name in sorted(params))
        refused = venue.refusal(
            params.get("apiKey"),
            payload,
            signature,
            str(params.get("timestamp", "0")),
            str(params.get("recvWindow", "5000")),
        )
        if refused is not None:
            return _failed(request_id, *refused)
        q = {name: str(value) for name, value in params.items()}
        refusal = venue._admit(q)
        if refusal is not None:
            error = json.loads(bytes(refusal.body))
            if refusal.status_code == 429:
                retry_at = _now_ms() + venue.retry_after_s * 1000
                error["data"] = {"serverTime": _now_ms(), "retryAfter": retry_at}
            return _failed(request_id, refusal.status_code, error["code"], error["msg"], error)
        order = venue._make(q)
        self.placed()
        return {"id": request_id, "status": 200, "result": order, "rateLimits": RATE_LIMITS}


def _now_ms() -> int:
    return int(time.time() * 1000)


def _failed(
    request_id: Any, status: int, code: int, msg: str, error: dict[str, Any] | None = None
) -> dict[str, Any]:
    body = error or {"code": code, "msg": msg}
    return {"id": request_id, "status": status, "error": body, "rateLimits": RATE_LIMITS}
