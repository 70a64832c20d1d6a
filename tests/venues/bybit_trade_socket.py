"""Bybit v5's websocket trade stream (``/v5/trade``) on the fake trading account.

As Bybit's "Websocket Trade Guideline" gives it: ``{"reqId", "op": "auth", "args": [key,
expires, signature]}`` first (the private stream's check, ``auth_ok``), answered ``{"reqId",
"retCode", "retMsg", "op", "connId"}`` (10004 for a bad signature); then ``{"reqId", "header":
{"X-BAPI-TIMESTAMP", "X-BAPI-RECV-WINDOW"}, "op": "order.create", "args": [order]}`` answered
``{"reqId", "retCode", "retMsg", "op", "data", "header", "connId"}``. The order goes through
the REST endpoint's own rate limit and filters (``BybitTrading.create``), so both refuse
alike; a 10006 carries ``X-Bapi-Limit-Reset-Timestamp`` in the answer's header.
"""

from __future__ import annotations

import json
from typing import Any

from tests.venues.clock import in_recv_window
from tests.venues.order_socket import FakeOrderSocket

TRADE_PATH = "/v5/trade"


class TradeSocket(FakeOrderSocket):
    def reply(self, venue: Any, raw: str, session: dict[str, Any]) -> str:
        request = json.loads(raw)
        op = request.get("op")
        if op == "ping":
            return json.dumps({"op": "pong", "connId": "fake"})
        if op == "auth":
            session["authed"] = venue.auth_ok(request.get("args"))
            code, msg = (0, "OK") if session["authed"] else (10004, "Invalid sign")
            return json.dumps(_reply(request, code, msg))
        return json.dumps(self.answer(venue, request, bool(session.get("authed"))))

    def answer(self, venue: Any, request: dict[str, Any], authed: bool) -> dict[str, Any]:
        if request.get("op") != "order.create":
            return _reply(request, 10001, f"params error: op {request.get('op')}")
        if not authed:
            return _reply(request, 10003, "Request not authorized")
        self.orders.append(request)
        if self.refuse_next:
            # WS OE general codes: 10429/20003 rate limits, 10019 "ws trade service is
            # restarting, do not accept new request".
            code, msg = self.refuse_next.pop(0)
            return _reply(request, code, msg)
        header = request.get("header") or {}
        stamp = str(header.get("X-BAPI-TIMESTAMP", ""))
        window = str(header.get("X-BAPI-RECV-WINDOW", "5000"))
        if not in_recv_window(stamp, window):
            return _reply(request, 10002, "invalid request, please check your server timestamp")
        (body,) = request.get("args") or [{}]
        code, msg, result, headers = venue.create(body)
        if code:
            venue.refused.append(f"{code} {msg}")
        else:
            self.placed()
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
