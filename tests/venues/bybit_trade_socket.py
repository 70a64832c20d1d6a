"""Bybit v5's websocket trade stream (``/v5/trade``) on the fake trading account.

As Bybit's "Websocket Trade Guideline" gives it: ``{"reqId", "op": "auth", "args": [key,
expires, signature]}`` first (the private stream's check, ``auth_ok``), answered ``{"reqId",
"retCode", "retMsg", "op", "connId"}`` (10004 for a bad signature); then ``{"reqId", "header":
{"X-BAPI-TIMESTAMP", "X-BAPI-RECV-WINDOW"}, "op": "order.create", "args": [order]}`` answered
``{"reqId", "retCode", "retMsg", "op", "data", "header", "connId"}``. The order goes through
the REST endpoint's own rate limit and filters (``BybitTrading.create``), so both refuse
alike; a 10006 carries ``X-Bapi-Limit-Reset-Timestamp`` in the answer's header.

``down`` refuses the handshake (the client falls back to REST); ``drop_after_place``
accepts the order, then closes the socket without answering (an unknown outcome).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket, WebSocketDisconnect

if TYPE_CHECKING:
    from tests.venues.bybit_trading import BybitTrading

TRADE_PATH = "/v5/trade"


@dataclass
class TradeSocket:
    down: bool = False
    drop_after_place: int = 0
    connections: int = 0
    # Each order.create request as received (header and args).
    orders: list[dict[str, Any]] = field(default_factory=list)

    def serve(self, venue: BybitTrading) -> Callable[[WebSocket], Awaitable[None]]:
        async def endpoint(ws: WebSocket) -> None:
            if self.down:
                await ws.close(code=1013)  # before accept: the handshake is refused
                return
            await ws.accept()
            self.connections += 1
            authed = False
            try:
                while True:
                    request = json.loads(await ws.receive_text())
                    op = request.get("op")
                    if op == "ping":
                        await ws.send_text(json.dumps({"op": "pong", "connId": "fake"}))
                        continue
                    if op == "auth":
                        authed = venue.auth_ok(request.get("args"))
                        code, msg = (0, "OK") if authed else (10004, "Invalid sign")
                        await ws.send_text(json.dumps(_reply(request, code, msg)))
                        continue
                    reply = self.answer(venue, request, authed)
                    if reply is None:
                        await ws.close(code=1011)
                        return
                    await ws.send_text(json.dumps(reply))
            except WebSocketDisconnect:
                pass

        return endpoint

    def answer(
        self, venue: BybitTrading, request: dict[str, Any], authed: bool
    ) -> dict[str, Any] | None:
        """The reply to one trade request; None: accepted, and the socket closes unanswered."""
        if request.get("op") != "order.create":
            return _reply(request, 10001, f"params error: op {request.get('op')}")
        if not authed:
            return _reply(request, 10003, "Request not authorized")
        self.orders.append(request)
        header = request.get("header") or {}
        stamp = str(header.get("X-BAPI-TIMESTAMP", ""))
        window = str(header.get("X-BAPI-RECV-WINDOW", "5000"))
        now = int(time.time() * 1000)
        if not stamp.isdigit() or not window.isdigit() or abs(now - int(stamp)) > int(window):
            return _reply(request, 10002, "invalid request, please check your server timestamp")
        (body,) = request.get("args") or [{}]
        code, msg, result, headers = venue.create(body)
        if code:
            venue.refused.append(f"{code} {msg}")
        elif self.drop_after_place > 0:
            self.drop_after_place -= 1
            return None
        return _reply(request, code, msg, result, headers or {})


def _reply(
    request: dict[str, Any],
    code: int,
    msg: str,
    data: dict[str, Any] | None = None,
    header: dict[str, str] | None = None,
) -> dict[str, Any]:
    reply: dict[str, Any] = {"retCode": code, "retMsg": msg, "op": request.get("op")}
    if "reqId" in request:
        reply["reqId"] = request["reqId"]
    if request.get("op") != "auth":
        reply |= {"data": data or {}, "retExtInfo": {}, "header": header or {}}
    return reply | {"connId": "fake"}
