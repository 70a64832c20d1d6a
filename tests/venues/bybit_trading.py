"""A Bybit v5 unified trading account on loopback, for the execution client's tests.

It takes orders the way Bybit documents them and answers in Bybit's shapes and codes:
signatures checked (``timestamp + key + recv_window + body`` for a POST, ``+ query string``
for a GET), the linear symbol's filters (``qtyStep``, ``minOrderQty``, ``minNotionalValue``,
``tickSize``), reduce-only against the fake's own position (truncated to the position, 110017
when there is none to reduce), the available balance (110007), ``orderLinkId`` unique forever
(110072), one-way or hedge mode per account (10001 "position idx not match position mode"),
and a per-second order rate limit (10006 with ``X-Bapi-Limit-Reset-Timestamp``).

An accepted order fills at ``fill_price`` (IOC limits only when the price crosses), in
``fill_parts`` pieces, and the rest of an IOC is cancelled when ``fill_ratio`` < 1; with
``auto_fill`` off it rests ``New`` until the test calls ``fill``. Every change is pushed on the
private stream (``order``, ``execution``, ``position``, ``wallet``) after the REST answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from tests.venues.bybit_trade_socket import TRADE_PATH, TradeSocket
from tests.venues.clock import in_recv_window
from tests.venues.fake_bybit import _sign
from tests.venues.harness import FakeVenue

API_KEY = "bybit-trade-key"
API_SECRET = "bybit-trade-secret"
LEVERAGE = Decimal(10)
_order_numbers = itertools.count(1_000_001)


@dataclass
class Rules:
    tick: Decimal = Decimal("0.10")
    qty_step: Decimal = Decimal("0.001")
    min_qty: Decimal = Decimal("0.001")
    min_notional: Decimal = Decimal(5)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


@dataclass
class BybitTrading(FakeVenue):
    ws_path: str = "/v5/private"
    instruments: dict[str, Rules] = field(
        default_factory=lambda: {"BTCUSDT": Rules(), "ETHUSDT": Rules(Decimal("0.01"))}
    )
    fill_price: dict[str, Decimal] = field(
        default_factory=lambda: {"BTCUSDT": Decimal(50000), "ETHUSDT": Decimal(3000)}
    )
    fill_parts: int = 1
    fill_ratio: Decimal = Decimal(1)
    auto_fill: bool = True
    positions: dict[str, Decimal] = field(default_factory=dict)  # signed, base units
    hedge: bool = False
    wallet_balance: Decimal = Decimal(10000)
    unrealised: Decimal = Decimal(0)
    # Orders per second before 10006 (Bybit's linear order/create limit is 10/s).
    order_limit: int = 10
    throttle: int = 0  # the next N orders are refused with 10006 whatever the count
    # Accept orders but lose the answer (a gateway's 502): the client cannot know.
    lose_answers: bool = False
    # After a Bybit restart, closed orders are found in /v5/order/history only.
    restarted: bool = False
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # by orderLinkId
    placements: Counter[str] = field(default_factory=Counter)  # accepted, per orderLinkId
    refused: list[str] = field(default_factory=list)
    _window: tuple[int, int] = (0, 0)  # (second, orders in it)
    trade_socket: TradeSocket = field(default_factory=lambda: TradeSocket())
    _authed: set[int] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    # -- REST -----------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v5/order/create", self._create, methods=["POST"]),
            Route("/v5/order/realtime", self._orders),
            Route("/v5/order/history", self._orders),
            Route("/v5/account/wallet-balance", self._wallet),
            Route("/v5/position/list", self._position_list),
            Route("/v5/market/instruments-info", self._instruments),
            WebSocketRoute(TRADE_PATH, self.trade_socket.serve(self)),
        ]

    async def _signed(self, request: Request) -> JSONResponse | None:
        call = await self.record(request)
        payload = call.body.decode() if request.method == "POST" else request.url.query
        headers = call.headers
        stamp, window = headers.get("x-bapi-timestamp", ""), headers.get("x-bapi-recv-window", "")
        if headers.get("x-bapi-api-key") != API_KEY:
            return self._refuse(10003, "API key is invalid.")
        if not in_recv_window(stamp, window):
            return self._refuse(10002, "invalid request, please check your server timestamp")
        if headers.get("x-bapi-sign") != _sign(API_SECRET, f"{stamp}{API_KEY}{window}{payload}"):
            return self._refuse(10004, "error sign! origin_string[...]")
        return None

    def _refuse(
        self, code: int, message: str, headers: dict[str, str] | None = None
    ) -> JSONResponse:
        self.refused.append(f"{code} {message}")
        return _answer(code, message, {}, headers)

    async def _create(self, request: Request) -> JSONResponse:
        if refused := await self._signed(request):
            return refused
        code, message, result, headers = self.create(json.loads(await request.body()))
        if code == 0 and self.lose_answers:
            return JSONResponse({"error": "bad gateway"}, 502)
        if code:
            self.refused.append(f"{code} {message}")
        return _answer(code, message, result, headers)

    @staticmethod
    def auth_ok(args: Any) -> bool:
        return auth_ok(args)

    def create(
        self, body: dict[str, Any]
    ) -> tuple[int, str, dict[str, Any], dict[str, str] | None]:
        """(retCode, retMsg, result, headers) of an order/create, REST's and the trade
        socket's alike: the rate limit, the filters, the order accepted and executed."""
        second = _now_ms() // 1000
        count = self._window[1] + 1 if self._window[0] == second else 1
        self._window = (second, count)
        if count > self.order_limit or self.throttle > 0:
            self.throttle = max(0, self.throttle - 1)
            reset = {"X-Bapi-Limit-Reset-Timestamp": str((second + 1) * 1000)}
            return 10006, "Too many visits!", {}, reset
        link_id = str(body.get("orderLinkId", ""))
        if body.get("category") != "linear":
            return 10001, "params error: category", {}, None
        rules = self.instruments.get(str(body.get("symbol")))
        if rules is None:
            return 10001, f"params error: symbol invalid {body.get('symbol')}", {}, None
        if self.hedge != (body.get("positionIdx", 0) in (1, 2)):
            return 10001, "position idx not match position mode", {}, None
        if link_id in self.orders:
            return 110072, "OrderLinkedID is duplicate", {}, None
        refusal = self._check(body, rules)
        if refusal:
            return *refusal, {}, None
        order = self._accept(body, link_id)
        self._later(self._execute(order))
        return 0, "OK", {"orderId": order["orderId"], "orderLinkId": link_id}, None

    def _check(self, body: dict[str, Any], rules: Rules) -> tuple[int, str] | None:
        qty = Decimal(body["qty"])
        limit = Decimal(body["price"]) if body.get("orderType") == "Limit" else None
        if qty % rules.qty_step or (limit is not None and limit % rules.tick):
            return 10001, "params error: qty or price is not a multiple of its step"
        if qty < rules.min_qty:
            return 10001, "The number of contracts exceeds minimum limit allowed"
        price = self.fill_price[body["symbol"]]
        position = self.positions.get(body["symbol"], Decimal(0))
        buy = body["side"] == "Buy"
        if body.get("reduceOnly"):
            if position == 0 or (position > 0) == buy:
                return 110017, "current position is zero, cannot fix reduce-only order qty"
            return None
        if qty * price < rules.min_notional:
            return 110094, "Order does not meet minimum order value 5USDT"
        if qty * price / LEVERAGE > self.wallet_balance:
            return 110007, "ab not enough for new order"
        return None

    def _accept(self, body: dict[str, Any], link_id: str) -> dict[str, Any]:
        qty = Decimal(body["qty"])
        if body.get("reduceOnly"):  # Bybit cuts a reduce-only order down to the position
            qty = min(qty, abs(self.positions.get(body["symbol"], Decimal(0))))
        order = {
            "orderId": str(uuid.UUID(int=next(_order_numbers))),
            "orderLinkId": link_id,
            "symbol": body["symbol"],
            "side": body["side"],
            "orderType": body["orderType"],
            "price": body.get("price", "0"),
            "qty": _text(qty),
            "reduceOnly": bool(body.get("reduceOnly")),
            "timeInForce": body.get("timeInForce", "GTC"),
            "positionIdx": body.get("positionIdx", 0),
            "orderStatus": "New",
            "cumExecQty": "0",
            "cumExecValue": "0",
            "avgPrice": "",
            "leavesQty": _text(qty),
            "rejectReason": "EC_NoError",
            "createdTime": str(_now_ms()),
            "updatedTime": str(_now_ms()),
        }
        self.orders[link_id] = order
        self.placements[link_id] += 1
        return order

    async def _execute(self, order: dict[str, Any]) -> None:
        await self._push_orders(order)
        if not self.auto_fill:
            return
        price = self.fill_price[order["symbol"]]
        limit = Decimal(order["price"]) if order["orderType"] == "Limit" else None
        crosses = limit is None or (limit >= price if order["side"] == "Buy" else limit <= price)
        total = Decimal(order["qty"]) * self.fill_ratio if crosses else Decimal(0)
        step = self.instruments[order["symbol"]].qty_step
        part = (total / self.fill_parts // step) * step
        for index in range(self.fill_parts):
            qty = part if index < self.fill_parts - 1 else total - part * (self.fill_parts - 1)
            if qty > 0:
                await self.fill(order["orderLinkId"], qty)
        if order["orderStatus"] != "Filled":  # IOC and market orders: the rest is cancelled
            order["orderStatus"] = "Cancelled"
            await self._push_orders(order)

    async def fill(self, link_id: str, qty: Decimal, price: Decimal | None = None) -> None:
        """Execute ``qty`` of an order now, and push it (execution, order, position, wallet)."""
        order = self.orders[link_id]
        price = price if price is not None else self.fill_price[order["symbol"]]
        done = Decimal(order["cumExecQty"]) + qty
        value = Decimal(order["cumExecValue"]) + qty * price
        leaves = Decimal(order["qty"]) - done
        order.update(
            cumExecQty=_text(done),
            cumExecValue=_text(value),
            avgPrice=_text(value / done),
            leavesQty=_text(leaves),
            orderStatus="Filled" if leaves == 0 else "PartiallyFilled",
            updatedTime=str(_now_ms()),
        )
        signed = qty if order["side"] == "Buy" else -qty
        symbol = order["symbol"]
        self.positions[symbol] = self.positions.get(symbol, Decimal(0)) + signed
        execution = {
            "category": "linear",
            "symbol": symbol,
            "orderId": order["orderId"],
            "orderLinkId": link_id,
            "side": order["side"],
            "orderPrice": order["price"],
            "orderQty": order["qty"],
            "leavesQty": order["leavesQty"],
            "orderType": order["orderType"],
            "execId": str(uuid.uuid4()),
            "execPrice": _text(price),
            "execQty": _text(qty),
            "execType": "Trade",
            "execTime": str(_now_ms()),
        }
        await self._push("execution", [execution])
        await self._push_orders(order)
        await self._push("position", [self._position_row(symbol)])
        await self._push("wallet", [self._wallet_row()])

    def _position_row(self, symbol: str) -> dict[str, Any]:
        size = self.positions.get(symbol, Decimal(0))
        side = "Buy" if size > 0 else "Sell" if size < 0 else ""
        index = (1 if size > 0 else 2) if self.hedge else 0
        return {
            "category": "linear",
            "symbol": symbol,
            "side": side,
            "size": _text(abs(size)),
            "positionIdx": index,
            "updatedTime": str(_now_ms()),
        }

    def _wallet_row(self) -> dict[str, Any]:
        margin = self.wallet_balance + self.unrealised
        return {
            "accountType": "UNIFIED",
            "totalEquity": _text(margin),
            "totalWalletBalance": _text(self.wallet_balance),
            "totalMarginBalance": _text(margin),
            "totalPerpUPL": _text(self.unrealised),
            "coin": [
                {
                    "coin": "USDT",
                    "equity": _text(margin),
                    "walletBalance": _text(self.wallet_balance),
                }
            ],
        }

    async def _orders(self, request: Request) -> JSONResponse:
        if refused := await self._signed(request):
            return refused
        query = request.query_params
        order = self.orders.get(query.get("orderLinkId", ""))
        closed = order is not None and order["orderStatus"] in ("Filled", "Cancelled")
        if self.restarted and closed and request.url.path == "/v5/order/realtime":
            order = None
        rows = [{**order, "category": "linear"}] if order else []
        return _answer(0, "OK", {"category": "linear", "list": rows, "nextPageCursor": ""})

    async def _wallet(self, request: Request) -> JSONResponse:
        if refused := await self._signed(request):
            return refused
        if request.query_params.get("accountType") != "UNIFIED":
            return self._refuse(10001, "accountType only support UNIFIED")
        return _answer(0, "OK", {"list": [self._wallet_row()]})

    async def _position_list(self, request: Request) -> JSONResponse:
        if refused := await self._signed(request):
            return refused
        query = request.query_params
        if query.get("category") != "linear" or "settleCoin" not in query:
            return self._refuse(10001, "symbol or settleCoin is required")
        rows = [
            self._position_row(symbol)
            for symbol, size in self.positions.items()
            if size != 0 and symbol.endswith(query["settleCoin"])
        ]
        return _answer(0, "OK", {"category": "linear", "list": rows, "nextPageCursor": ""})

    async def _instruments(self, request: Request) -> JSONResponse:
        await self.record(request)
        symbol = request.query_params.get("symbol")
        rows = [
            {
                "symbol": name,
                "status": "Trading",
                "priceFilter": {"tickSize": _text(rules.tick)},
                "lotSizeFilter": {
                    "qtyStep": _text(rules.qty_step),
                    "minOrderQty": _text(rules.min_qty),
                    "minNotionalValue": _text(rules.min_notional),
                },
            }
            for name, rules in self.instruments.items()
            if symbol in (None, name)
        ]
        return _answer(0, "OK", {"category": "linear", "list": rows, "nextPageCursor": ""})

    # -- the private stream ---------------------------------------------------------------

    async def on_message(self, ws: WebSocket, message: Any) -> None:
        if not isinstance(message, dict):
            return
        op = message.get("op")
        if op == "auth":
            ok = auth_ok(message.get("args"))
            if ok:
                self._authed.add(id(ws))
            await self.send(
                ws,
                {
                    "success": ok,
                    "ret_msg": "" if ok else "Params Error",
                    "op": "auth",
                    "conn_id": "fake",
                },
            )
        elif op == "subscribe":
            ok = id(ws) in self._authed
            await self.send(
                ws,
                {
                    "success": ok,
                    "ret_msg": "" if ok else "Request not authorized",
                    "op": "subscribe",
                    "conn_id": "fake",
                },
            )
            if ok:
                self.mark_subscribed()
        elif op == "ping":
            await self.send(ws, {"op": "pong", "args": [str(_now_ms())], "conn_id": "fake"})

    async def _push_orders(self, order: dict[str, Any]) -> None:
        await self._push("order", [{**order, "category": "linear"}])

    async def _push(self, topic: str, rows: list[dict[str, Any]]) -> None:
        name = topic if topic == "wallet" else f"{topic}.linear"
        await self.push(
            {"id": uuid.uuid4().hex, "topic": name, "creationTime": _now_ms(), "data": rows}
        )

    def _later(self, work: Any) -> None:
        """Run ``work`` after the REST answer has gone out (Bybit acks, then streams)."""

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


def auth_ok(args: Any) -> bool:
    """Bybit's websocket ``auth``: [key, expires (ms, future), HMAC of "GET/realtime" +
    expires], on the private stream and the trade socket alike."""
    return (
        isinstance(args, list)
        and len(args) == 3
        and args[0] == API_KEY
        and isinstance(args[1], int)
        and args[1] > _now_ms()
        and args[2] == _sign(API_SECRET, f"GET/realtime{args[1]}")
    )


def _answer(
    code: int, message: str, result: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"retCode": code, "retMsg": message, "result": result, "retExtInfo": {}, "time": _now_ms()},
        headers=headers,
    )
