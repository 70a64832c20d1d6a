"""Binance USD-M's websocket order API (``ws-fapi``) on the fake trading account.

``order.place`` as the USD-M docs give it: ``{"id", "method", "params"}`` in, ``{"id",
"status", "result" | "error", "rateLimits"}`` out. The params are signed with HMAC-SHA256 over
every param but ``signature``, sorted by name. Key, signature, time, rate limit and filters
are the REST endpoint's own checks (``FakeBinanceTrading.refusal`` and ``_admit``), so the
socket and REST refuse alike; a 429 carries ``error.data.retryAfter`` (epoch ms).

``down`` refuses the handshake (the client falls back to REST); ``drop_after_place`` places
the order, then closes the socket without answering (an unknown outcome).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket, WebSocketDisconnect

if TYPE_CHECKING:
    from tests.venues.binance_usdm_trading import FakeBinanceTrading

WS_FAPI_PATH = "/ws-fapi/v1"
RATE_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
     "limit": 2400, "count": 1},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
     "limit": 300, "count": 1},
]  # fmt: skip


@dataclass
class WsFapi:
    down: bool = False
    drop_after_place: int = 0
    connections: int = 0
    # Each order.place's params as received (signature included).
    orders: list[dict[str, Any]] = field(default_factory=list)

    def serve(self, venue: FakeBinanceTrading) -> Callable[[WebSocket], Awaitable[None]]:
        async def endpoint(ws: WebSocket) -> None:
            if self.down:
                await ws.close(code=1013)  # before accept: the handshake is refused
                return
            await ws.accept()
            self.connections += 1
            try:
                while True:
                    request = json.loads(await ws.receive_text())
                    reply = self.answer(venue, request)
                    if reply is None:
                        await ws.close(code=1011)
                        return
                    await ws.send_text(json.dumps(reply))
            except WebSocketDisconnect:
                pass

        return endpoint

    def answer(self, venue: FakeBinanceTrading, request: dict[str, Any]) -> dict[str, Any] | None:
        """The reply to one request; None: placed, and the socket closes unanswered."""
        request_id = request.get("id")
        if request.get("method") != "order.place":
            return _failed(
                request_id, 400, -1100, "Illegal characters found in parameter 'method'."
            )
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
        if self.drop_after_place > 0:
            self.drop_after_place -= 1
            return None
        return {"id": request_id, "status": 200, "result": order, "rateLimits": RATE_LIMITS}


def _now_ms() -> int:
    return int(time.time() * 1000)


def _failed(
    request_id: Any, status: int, code: int, msg: str, error: dict[str, Any] | None = None
) -> dict[str, Any]:
    body = error or {"code": code, "msg": msg}
    return {"id": request_id, "status": status, "error": body, "rateLimits": RATE_LIMITS}
