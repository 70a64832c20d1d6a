"""An OKX v5 trading account on loopback (net or long/short mode), for the execution client.

It takes orders the way OKX documents them and answers in OKX's shapes and codes: every
private request's signature checked over ``timestamp + METHOD + path?query + body``; the
swap's filters in contracts (``lotSz`` 51121, ``minSz`` 51020); reduce-only against the fake's
own position (51169 with nothing to reduce, 51170 in the position's direction); margin (51008);
``clOrdId`` unique (51016); unknown instruments (51001); long/short mode without ``posSide``
(51000 "Parameter posSide error"); and a per-instrument order limit per 2-second window
(HTTP 429, 50011). An order unknown to GET /trade/order answers 51603.

An accepted order fills at ``fill_price`` (an ``ioc`` only when ``px`` crosses it), in
``fill_parts`` pieces; the rest is cancelled when ``fill_ratio`` < 1. With ``auto_fill`` off it
stays ``live`` until the test calls ``fill``. Every change is pushed on the ``orders``,
``positions`` and ``account`` channels after the REST answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from app.venues.okx.signing import sign
from tests.venues.fake_okx import API_KEY, API_SECRET, PASSPHRASE, instrument
from tests.venues.harness import FakeVenue
from tests.venues.okx_order_socket import ORDER_PATH, OrderSocket

LEVERAGE = Decimal(10)
_order_numbers = itertools.count(620_000_000_000_000_001)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


@dataclass
class OkxTrading(FakeVenue):
    ws_path: str = "/ws/v5/private"
    instruments: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            "BTC-USDT-SWAP": instrument("BTC-USDT-SWAP", "0.01"),
            "ETH-USDT-SWAP": instrument("ETH-USDT-SWAP", "0.1"),
            "BTC-USD-SWAP": instrument("BTC-USD-SWAP", "100", "inverse"),
        }
    )
    fill_price: dict[str, Decimal] = field(
        default_factory=lambda: {"BTC-USDT-SWAP": Decimal(50000), "ETH-USDT-SWAP": Decimal(3000)}
    )
    fill_parts: int = 1
    fill_ratio: Decimal = Decimal(1)
    auto_fill: bool = True
    positions: dict[str, Decimal] = field(default_factory=dict)  # signed contracts (net)
    pos_mode: str = "net_mode"
    available: Decimal = Decimal(10000)  # USDT
    total_eq: Decimal = Decimal(10000)
    order_limit: int = 60  # per instrument per 2 s, as OKX's place-order limit
    throttle: int = 0  # the next N orders are refused with 50011 whatever the count
    # Accept orders but lose the answer (a gateway's 502): the client cannot know.
    lose_answers: bool = False
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # by clOrdId
    placements: Counter[str] = field(default_factory=Counter)
    refused: list[str] = field(default_factory=list)
    _windows: dict[str, tuple[int, int]] = field(default_factory=dict)
    _logged_in: set[int] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    order_socket: OrderSocket = field(default_factory=lambda: OrderSocket())

    # -- REST -----------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/v5/trade/order", self._order, methods=["GET", "POST"]),
            Route("/api/v5/account/balance", self._balance),
            Route("/api/v5/account/positions", self._positions),
            Route("/api/v5/account/config", self._config),
            Route("/api/v5/public/instruments", self._instruments),
            WebSocketRoute(ORDER_PATH, self.order_socket.serve(self)),
        ]

    async def _signed(self, request: Request) -> JSONResponse | None:
        call = await self.record(request)
        headers = call.headers
        if headers.get("ok-access-key") != API_KEY:
            return self._fail("50111", "Invalid OK-ACCESS-KEY.", 401)
        if headers.get("ok-access-passphrase") != PASSPHRASE:
            return self._fail("50105", 'Request header "OK-ACCESS-PASSPHRASE" incorrect.', 401)
        stamp = headers.get("ok-access-timestamp", "")
        try:
            at = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        except ValueError:
            return self._fail("50112", "Invalid OK-ACCESS-TIMESTAMP.", 401)
        if abs(at - datetime.now(UTC)) > timedelta(seconds=30):
            return self._fail("50102", "Timestamp request expired.", 401)
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        expected = sign(API_SECRET, f"{stamp}{request.method}{path}{call.body.decode()}")
        if not hmac.compare_digest(headers.get("ok-access-sign", ""), expected):
            return self._fail("50113", "Invalid signature.", 401)
        return None

    def _fail(self, code: str, message: str, status: int = 200) -> JSONResponse:
        """A request refused as a whole."""
        self.refused.append(f"{code} {message}")
        return JSONResponse({"code": code, "msg": message, "data": []}, status)

    def _order_refused(
        self, body: dict[str, Any], code: str, message: str, sub: str = ""
    ) -> JSONResponse:
        """An order refused: ``code`` "1" and the reason in data[0].sCode."""
        self.refused.append(f"{code} {message}")
        row = {
            "clOrdId": body.get("clOrdId", ""),
            "ordId": "",
            "tag": "",
            "ts": str(_now_ms()),
            "sCode": code,
            "sMsg": message,
            "subCode": sub,
        }
        return JSONResponse(
            {"code": "1", "msg": "Operation failed.", "data": [row], "inTime": "", "outTime": ""}
        )

    async def _order(self, request: Request) -> JSONResponse:
        if refused := await self._signed(request):
            return refused
        if request.method == "GET":
            order = self.orders.get(request.query_params.get("clOrdId", ""))
            if order is None or order["instId"] != request.query_params.get("instId"):
                return self._fail("51603", "Order does not exist.")
            return _ok([order])
        answer = self.place(json.loads(await request.body()))
        if self.lose_answers and json.loads(bytes(answer.body))["code"] == "0":
            return JSONResponse({"error": "bad gateway"}, 502)
        return answer

    def place(self, body: dict[str, Any]) -> JSONResponse:
        """An order, REST's and the order socket's alike: the rate limit, the position mode,
        the filters, the order accepted and executed."""
        inst_id = str(body.get("instId"))
        window = int(time.time() // 2)
        start, count = self._windows.get(inst_id, (window, 0))
        count = count + 1 if start == window else 1
        self._windows[inst_id] = (window, count)
        if count > self.order_limit or self.throttle > 0:
            self.throttle = max(0, self.throttle - 1)
            return self._fail("50011", "Too Many Requests", 429)
        if self.pos_mode == "long_short_mode" and body.get("posSide") not in ("long", "short"):
            return self._fail("51000", "Parameter posSide error", 400)
        inst = self.instruments.get(inst_id)
        if inst is None:
            return self._order_refused(body, "51001", "Instrument ID or Spread ID doesn't exist.")
        if body.get("clOrdId") in self.orders:
            return self._order_refused(body, "51016", "Client order ID already exists.")
        refusal = self._check(body, inst)
        if refusal:
            return self._order_refused(body, *refusal)
        order = self._accept(body)
        self._later(self._execute(order))
        return _ok(
            [
                {
                    "clOrdId": order["clOrdId"],
                    "ordId": order["ordId"],
                    "tag": "",
                    "ts": str(_now_ms()),
                    "sCode": "0",
                    "sMsg": "Order placed",
                    "subCode": "",
                }
            ]
        )

    def _check(self, body: dict[str, Any], inst: dict[str, Any]) -> tuple[str, ...] | None:
        size = Decimal(body["sz"])
        if size % Decimal(inst["lotSz"]):
            return "51121", "Order quantity must be a multiple of the lot size."
        if size < Decimal(inst["minSz"]):
            return "51020", "Your order should meet or exceed the minimum order amount."
        position = self.positions.get(body["instId"], Decimal(0))
        buy = body["side"] == "buy"
        if body.get("reduceOnly"):
            if position == 0:
                return "51169", (
                    "Order failed because you don't have any positions in this direction "
                    "for this contract to reduce or close."
                )
            if (position > 0) == buy:
                return "51170", (
                    "Failed to place order. A reduce-only order can't be the same trading "
                    "direction as your existing positions."
                )
            return None
        value = size * Decimal(inst["ctVal"]) * self.fill_price[body["instId"]]
        if value / LEVERAGE > self.available:
            return "51008", "Order failed. Insufficient USDT margin in account", "1001"
        return None

    def _accept(self, body: dict[str, Any]) -> dict[str, Any]:
        size = Decimal(body["sz"])
        if body.get("reduceOnly"):
            size = min(size, abs(self.positions.get(body["instId"], Decimal(0))))
        order = {
            "instType": "SWAP",
            "instId": body["instId"],
            "clOrdId": body.get("clOrdId", ""),
            "ordId": str(next(_order_numbers)),
            "px": body.get("px", ""),
            "sz": _text(size),
            "ordType": body["ordType"],
            "side": body["side"],
            "posSide": "net",
            "tdMode": body["tdMode"],
            "reduceOnly": "true" if body.get("reduceOnly") else "false",
            "state": "live",
            "accFillSz": "0",
            "fillSz": "0",
            "fillPx": "",
            "avgPx": "",
            "cTime": str(_now_ms()),
            "uTime": str(_now_ms()),
        }
        self.orders[order["clOrdId"]] = order
        self.placements[order["clOrdId"]] += 1
        return order

    async def _execute(self, order: dict[str, Any]) -> None:
        await self._push("orders", [order])
        if not self.auto_fill:
            return
        price = self.fill_price[order["instId"]]
        limit = Decimal(order["px"]) if order["ordType"] == "ioc" else None
        crosses = limit is None or (limit >= price if order["side"] == "buy" else limit <= price)
        total = Decimal(order["sz"]) * self.fill_ratio if crosses else Decimal(0)
        lot = Decimal(self.instruments[order["instId"]]["lotSz"])
        part = (total / self.fill_parts // lot) * lot
        for index in range(self.fill_parts):
            size = part if index < self.fill_parts - 1 else total - part * (self.fill_parts - 1)
            if size > 0:
                await self.fill(order["clOrdId"], size)
        if order["state"] != "filled":
            order["state"] = "canceled"
            await self._push("orders", [order])

    async def fill(self, client_id: str, size: Decimal, price: Decimal | None = None) -> None:
        """Execute ``size`` contracts of an order now and push it (orders, positions, account)."""
        order = self.orders[client_id]
        price = price if price is not None else self.fill_price[order["instId"]]
        before = Decimal(order["accFillSz"])
        done = before + size
        average = ((Decimal(order["avgPx"] or 0) * before) + price * size) / done
        order.update(
            accFillSz=_text(done),
            fillSz=_text(size),
            fillPx=_text(price),
            avgPx=_text(average),
            tradeId=str(next(_order_numbers)),
            state="filled" if done == Decimal(order["sz"]) else "partially_filled",
            uTime=str(_now_ms()),
        )
        signed = size if order["side"] == "buy" else -size
        inst_id = order["instId"]
        self.positions[inst_id] = self.positions.get(inst_id, Decimal(0)) + signed
        await self._push("orders", [order])
        await self._push("positions", [self._position_row(inst_id)])
        await self._push("account", [{"totalEq": _text(self.total_eq), "details": []}])

    def _position_row(self, inst_id: str) -> dict[str, Any]:
        pos = self.positions.get(inst_id, Decimal(0))
        if self.pos_mode == "net_mode":
            side, pos_text = "net", _text(pos)
        else:
            side, pos_text = ("long" if pos > 0 else "short"), _text(abs(pos))
        return {
            "instType": "SWAP",
            "instId": inst_id,
            "mgnMode": "cross",
            "posSide": side,
            "pos": pos_text,
            "posCcy": "",
            "uTime": str(_now_ms()),
        }

    async def _balance(self, request: Request) -> JSONResponse:
        if refused := await self._signed(request):
            return refused
        upl = "0"
        return _ok(
            [
                {
                    "totalEq": _text(self.total_eq),
                    "adjEq": "",
                    "upl": upl,
                    "details": [{"ccy": "USDT", "eq": _text(self.total_eq)}],
                }
            ]
        )

    async def _positions(self, request: Request) -> JSONResponse:
        if refused := await self._signed(request):
            return refused
        inst_type = request.query_params.get("instType")
        rows = [
            self._position_row(inst_id)
            for inst_id, pos in self.positions.items()
            if pos != 0 and inst_type in (None, "SWAP")
        ]
        return _ok(rows)

    async def _config(self, request: Request) -> JSONResponse:
        if refused := await self._signed(request):
            return refused
        return _ok(
            [
                {
                    "uid": "44705892343619584",
                    "acctLv": "2",
                    "posMode": self.pos_mode,
                    "perm": "read_only,trade",
                }
            ]
        )

    async def _instruments(self, request: Request) -> JSONResponse:
        await self.record(request)
        if request.query_params.get("instType") != "SWAP":
            return self._fail("50014", "Parameter instType can not be empty.", 400)
        return _ok(list(self.instruments.values()))

    # -- the private stream ---------------------------------------------------------------

    async def on_message(self, ws: WebSocket, message: Any) -> None:
        if message == "ping":
            await self.send(ws, "pong")
            return
        if not isinstance(message, dict):
            await self.send(ws, {"event": "error", "code": "60012", "msg": "Invalid request"})
            return
        if message.get("op") == "login":
            ok = self.login_ok(message["args"][0])
            if ok:
                self._logged_in.add(id(ws))
                await self.send(ws, {"event": "login", "code": "0", "msg": "", "connId": "c1"})
            else:
                await self.send(ws, {"event": "error", "code": "60009", "msg": "Login failed."})
        elif message.get("op") == "subscribe":
            if id(ws) not in self._logged_in:
                await self.send(ws, {"event": "error", "code": "60011", "msg": "Please log in"})
                return
            for arg in message["args"]:
                await self.send(
                    ws, {"id": message.get("id"), "event": "subscribe", "arg": arg, "connId": "c1"}
                )
            self.mark_subscribed()

    @staticmethod
    def login_ok(args: dict[str, Any]) -> bool:
        """OKX's websocket login: key, passphrase, a fresh Unix-seconds timestamp and the
        signature of ``timestamp + "GET/users/self/verify"``."""
        stamp = str(args.get("timestamp", ""))
        return (
            args.get("apiKey") == API_KEY
            and args.get("passphrase") == PASSPHRASE
            and stamp.isdigit()
            and abs(int(stamp) - time.time()) < 30
            and hmac.compare_digest(
                str(args.get("sign")), sign(API_SECRET, f"{stamp}GET/users/self/verify")
            )
        )

    async def _push(self, channel: str, rows: list[dict[str, Any]]) -> None:
        arg: dict[str, str] = {"channel": channel, "uid": "44705892343619584"}
        if channel != "account":
            arg["instType"] = "SWAP"
        await self.push({"arg": arg, "data": [dict(row) for row in rows]})

    def _later(self, work: Any) -> None:
        """Run ``work`` after the REST answer has gone out (OKX acks, then streams)."""

        async def run() -> None:
            await asyncio.sleep(0)
            await work

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settled(self) -> None:
        """Wait until every accepted order's fills have been applied and pushed."""
        while self._tasks:
            with contextlib.suppress(Exception):
                await asyncio.gather(*self._tasks)


def _ok(data: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse({"code": "0", "msg": "", "data": data})
