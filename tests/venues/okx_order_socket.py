"""OKX's websocket ``order`` operation on the fake account's private endpoint.

As OKX documents it (WebSocket Trade API, "Place order"): after ``login`` (the private
stream's, ``login_ok``), ``{"id", "op": "order", "args": [order]}`` is answered ``{"id", "op",
"code", "msg", "data": [{"clOrdId", "ordId", "sCode", "sMsg", ...}], "inTime", "outTime"}``;
the order takes REST's path (``OkxTrading.place``: the per-instrument rate limit, position
mode, filters and codes), so both refuse alike. ``ping`` is answered ``pong``.

OKX serves orders on the private endpoint itself; the fake serves them on a path of their
own as well, so that a test can refuse the order socket (``down``) and keep the stream.
"""

from __future__ import annotations

import json
import time
from typing import Any

from tests.venues.order_socket import FakeOrderSocket

ORDER_PATH = "/ws/v5/private-orders"
LOGGED_IN = {"event": "login", "code": "0", "msg": "", "connId": "c2"}
LOGIN_FAILED = {"event": "error", "code": "60009", "msg": "Login failed."}


class OrderSocket(FakeOrderSocket):
    def reply(self, venue: Any, raw: str, session: dict[str, Any]) -> str:
        if raw == "ping":
            return "pong"
        request = json.loads(raw)
        if request.get("op") == "login":
            session["logged_in"] = venue.login_ok((request.get("args") or [{}])[0])
            return json.dumps(LOGGED_IN if session["logged_in"] else LOGIN_FAILED)
        return json.dumps(self.answer(venue, request, bool(session.get("logged_in"))))

    def answer(self, venue: Any, request: dict[str, Any], logged_in: bool) -> dict[str, Any]:
        head = {"id": request.get("id"), "op": request.get("op")}
        if request.get("op") != "order":
            return {**head, "code": "60012", "msg": "Invalid request", "data": []}
        if not logged_in:
            return {**head, "code": "60011", "msg": "Please log in", "data": []}
        self.orders.append(request)
        if self.refuse_next:
            # The websocket's own codes (6xxxx: 60014 "Requests too frequent", 60011 "Please
            # log in") refuse the request; others refuse the order, in ``sCode``.
            code, msg = self.refuse_next.pop(0)
            if code.startswith("6"):
                return {**head, "code": code, "msg": msg, "data": []}
            (body,) = request.get("args") or [{}]
            ack = {"clOrdId": body.get("clOrdId", ""), "ordId": "", "sCode": code, "sMsg": msg}
            return {**head, "code": "1", "msg": "", "data": [ack]}
        (body,) = request.get("args") or [{}]
        envelope = json.loads(bytes(venue.place(body).body))
        if envelope["code"] == "0":
            self.placed()
        stamp = str(int(time.time() * 1_000_000))
        return {**head, **envelope, "inTime": stamp, "outTime": stamp}
