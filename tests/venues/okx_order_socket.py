"""OKX's websocket ``order`` operation on the fake account's private endpoint.

As OKX documents it (WebSocket Trade API, "Place order"): after ``login`` (the private
stream's, ``login_ok``), ``{"id", "op": "order", "args": [order]}`` is answered ``{"id", "op",
"code", "msg", "data": [{"clOrdId", "ordId", "sCode", "sMsg", ...}], "inTime", "outTime"}``;
the order takes REST's path (``OkxTrading.place``: the per-instrument rate limit, position
mode, filters and codes), so both refuse alike. ``ping`` is answered ``pong``.

OKX serves orders on the private endpoint itself; the fake serves them on a path of their
own as well, so that a test can refuse the order socket (``down``: the handshake is
refused, the client falls back to REST) and keep the private stream.
``drop_after_place`` accepts the order, then closes the socket without answering.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket, WebSocketDisconnect

if TYPE_CHECKING:
    from tests.venues.okx_trading import OkxTrading

ORDER_PATH = "/ws/v5/private-orders"


@dataclass
class OrderSocket:
    down: bool = False
    drop_after_place: int = 0
    connections: int = 0
    # Each order request as received.
    orders: list[dict[str, Any]] = field(default_factory=list)

    def serve(self, venue: OkxTrading) -> Callable[[WebSocket], Awaitable[None]]:
        async def endpoint(ws: WebSocket) -> None:
            if self.down:
                await ws.close(code=1013)  # before accept: the handshake is refused
                return
            await ws.accept()
            self.connections += 1
            logged_in = False
            try:
                while True:
                    raw = await ws.receive_text()
                    if raw == "ping":
                        await ws.send_text("pong")
                        continue
                    request = json.loads(raw)
                    if request.get("op") == "login":
                        logged_in = venue.login_ok((request.get("args") or [{}])[0])
                        login = {"event": "login", "code": "0", "msg": "", "connId": "c2"}
                        failed = {"event": "error", "code": "60009", "msg": "Login failed."}
                        await ws.send_text(json.dumps(login if logged_in else failed))
                        continue
                    reply = self.answer(venue, request, logged_in)
                    if reply is None:
                        await ws.close(code=1011)
                        return
                    await ws.send_text(json.dumps(reply))
            except WebSocketDisconnect:
                pass

        return endpoint

    def answer(
        self, venue: OkxTrading, request: dict[str, Any], logged_in: bool
    ) -> dict[str, Any] | None:
        """The reply to one request; None: accepted, and the socket closes unanswered."""
        head = {"id": request.get("id"), "op": request.get("op")}
        if request.get("op") != "order":
            return {**head, "code": "60012", "msg": "Invalid request", "data": []}
        if not logged_in:
            return {**head, "code": "60011", "msg": "Please log in", "data": []}
        self.orders.append(request)
        (body,) = request.get("args") or [{}]
        envelope = json.loads(bytes(venue.place(body).body))
        if envelope["code"] == "0" and self.drop_after_place > 0:
            self.drop_after_place -= 1
            return None
        stamp = str(int(time.time() * 1_000_000))
        return {**head, **envelope, "inTime": stamp, "outTime": stamp}
