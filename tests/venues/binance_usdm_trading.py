"""A Binance USD-M Futures trading account on loopback: what a follower's executor talks to.

Checked as Binance does (USD-M docs): the API key header, the HMAC-SHA256 signature of the
exact query string and a fresh timestamp; the symbol's filters (LOT_SIZE for limit orders,
MARKET_LOT_SIZE for market orders, PRICE_FILTER, MIN_NOTIONAL) with Binance's codes; reduce-
only; margin; a duplicate ``newClientOrderId`` refused only while that order is open (a filled
one's id is accepted again, which is why the executor must query before resending).

Orders fill at ``prices[symbol]`` (a limit IOC only when it crosses), at once or in
``fill_parts`` parts pushed on the user stream after the answer, or rest open
(``hold_open``). Every fill moves the position and is pushed as ORDER_TRADE_UPDATE, then
ACCOUNT_UPDATE. ``throttle`` answers the next requests 429 with Retry-After; ``lose_answers``
places orders but answers 503 (execution status unknown). ``placements`` counts the orders
made per client id.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from tests.venues.binance_usdm_ws_api import WS_FAPI_PATH, WsFapi
from tests.venues.fake_binance_usdm import BinanceAccount, error, now_ms

LEVERAGE = Decimal(10)


def _on_step(value: Decimal, step: Decimal) -> bool:
    return (value % step) == 0


@dataclass(frozen=True)
class Rules:
    """One symbol's filters (exchangeInfo: LOT_SIZE, MARKET_LOT_SIZE, PRICE_FILTER,
    MIN_NOTIONAL) and its quantityPrecision."""

    step: Decimal = Decimal("0.001")
    min_qty: Decimal = Decimal("0.001")
    max_qty: Decimal = Decimal("1000")
    market_step: Decimal = Decimal("0.001")
    market_min_qty: Decimal = Decimal("0.001")
    market_max_qty: Decimal = Decimal("120")
    tick: Decimal = Decimal("0.1")
    min_notional: Decimal = Decimal("100")
    quantity_precision: int = 3


@dataclass
class FakeBinanceTrading(BinanceAccount):
    api_key: str = "binance-follower-key-77ad"
    api_secret: str = "binance-follower-secret-c3e1"
    ws_path: str = "/ws/{listen_key}"
    equity: Decimal = Decimal("10000")
    dual_side: bool = False
    rules: dict[str, Rules] = field(
        default_factory=lambda: {
            "BTCUSDT": Rules(),
            "ETHUSDT": Rules(
                step=Decimal("0.01"),
                min_qty=Decimal("0.01"),
                market_step=Decimal("0.01"),
                market_min_qty=Decimal("0.01"),
            ),
        }
    )
    prices: dict[str, Decimal] = field(
        default_factory=lambda: {"BTCUSDT": Decimal("50000"), "ETHUSDT": Decimal("3000")}
    )
    positions: dict[str, Decimal] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    placements: Counter[str] = field(default_factory=Counter)
    fill_parts: int = 1
    # True: orders rest open (NEW) without filling, as a limit order away from the market.
    hold_open: bool = False
    throttle: int = 0
    retry_after_s: int = 1
    lose_answers: int = 0
    next_order_id: int = 7_000_000_001
    order_requests: int = 0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    # ws-fapi: the order socket refuses handshakes while down; after placing an order it
    # closes without answering ``drop_ws_after_place`` times (an unknown outcome).
    ws_api: WsFapi = field(default_factory=lambda: WsFapi())

    def order_calls(self) -> list[dict[str, str]]:
        return [
            c.query for c in self.rest_calls if c.path == "/fapi/v1/order" and c.method == "POST"
        ]

    # -- REST -------------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [
            WebSocketRoute(WS_FAPI_PATH, self.ws_api.serve(self)),
            Route("/fapi/v1/listenKey", self._listen_key, methods=["POST", "PUT", "DELETE"]),
            Route("/fapi/v1/order", self._order, methods=["POST", "GET"]),
            Route("/fapi/v3/account", self._account),
            Route("/fapi/v1/positionSide/dual", self._dual),
        ]

    async def _dual(self, request: Request) -> JSONResponse:
        if refused := await self._check(request):
            return refused
        return JSONResponse({"dualSidePosition": self.dual_side})

    async def _account(self, request: Request) -> JSONResponse:
        if refused := await self._check(request):
            return refused
        equity = str(self.equity)
        positions = [
            {
                "symbol": symbol,
                "positionSide": "BOTH",
                "positionAmt": str(qty),
                "unrealizedProfit": "0.00000000",
                "isolatedMargin": "0.00000000",
                "notional": str(qty * self.prices.get(symbol, Decimal(0))),
                "isolatedWallet": "0",
                "initialMargin": "0",
                "maintMargin": "0",
                "updateTime": now_ms(),
            }
            for symbol, qty in sorted(self.positions.items())
            if qty
        ]
        return JSONResponse(
            {
                "totalInitialMargin": "0.00000000",
                "totalMaintMargin": "0.00000000",
                "totalWalletBalance": equity,
                "totalUnrealizedProfit": "0.00000000",
                "totalMarginBalance": equity,
                "availableBalance": equity,
                "maxWithdrawAmount": equity,
                "assets": [],
                "positions": positions,
            }
        )

    async def _order(self, request: Request) -> JSONResponse:
        if refused := await self._check(request):
            return refused
        q = request.query_params
        if request.method == "GET":
            order = self.orders.get(q.get("origClientOrderId", ""))
            if order is None or order["symbol"] != q.get("symbol"):
                return error(400, -2013, "Order does not exist.")
            return JSONResponse(order)
        refusal = self._admit(q)
        if refusal is not None:
            return refusal
        order = self._make(q)
        if self.lose_answers > 0:
            self.lose_answers -= 1
            return JSONResponse({"code": -1007, "msg": "Unknown error"}, status_code=503)
        return JSONResponse(order)

    def _admit(self, q: Any) -> JSONResponse | None:
        """The rate limit and the filters, REST's and ws-fapi's alike: None means place it."""
        self.order_requests += 1
        if self.throttle > 0:
            self.throttle -= 1
            return JSONResponse(
                {"code": -1003, "msg": "Too many requests; current limit is 300 orders per 10s."},
                status_code=429,
                headers={"Retry-After": str(self.retry_after_s)},
            )
        return self._validate(q)

    def _validate(self, q: Any) -> JSONResponse | None:
        symbol = q.get("symbol", "")
        rules = self.rules.get(symbol)
        if rules is None:
            return error(400, -1121, "Invalid symbol.")
        client_id = q.get("newClientOrderId", "")
        existing = self.orders.get(client_id)
        if existing is not None and existing["status"] in ("NEW", "PARTIALLY_FILLED"):
            return error(400, -4116, "ClientOrderId is duplicated.")
        qty = Decimal(q.get("quantity", "0"))
        if qty <= 0:
            return error(400, -4003, "Quantity less than or equal to zero.")
        if -qty.as_tuple().exponent > rules.quantity_precision:  # type: ignore[operator]
            return error(400, -1111, "Precision is over the maximum defined for this asset.")
        market = q.get("type") == "MARKET"
        step = rules.market_step if market else rules.step
        if not _on_step(qty, step):
            return error(400, -4023, f"Qty not increased by step size {step}.")
        if qty < (rules.market_min_qty if market else rules.min_qty):
            return error(400, -4004, "Quantity less than min quantity.")
        if qty > (rules.market_max_qty if market else rules.max_qty):
            return error(400, -4005, "Quantity greater than max quantity.")
        price = self.prices[symbol]
        if not market:
            limit = Decimal(q.get("price", "0"))
            if not _on_step(limit, rules.tick):
                return error(400, -4014, f"Price not increased by tick size {rules.tick}.")
            price = limit
        side = 1 if q.get("side") == "BUY" else -1
        held = self.positions.get(symbol, Decimal(0))
        reduce_only = q.get("reduceOnly") == "true"
        if reduce_only and (held * side >= 0 or qty > abs(held)):
            return error(400, -2022, "ReduceOnly Order is rejected.")
        if not reduce_only and qty * price < rules.min_notional:
            return error(
                400,
                -4164,
                f"Order's notional must be no smaller than {rules.min_notional} (unless you "
                "choose reduce only).",
            )
        opening = not reduce_only and held * side >= 0
        if opening and (abs(held) + qty) * self.prices[symbol] / LEVERAGE > self.equity:
            return error(400, -2019, "Margin is insufficient.")
        return None

    def _make(self, q: Any) -> dict[str, Any]:
        symbol, client_id = q["symbol"], q["newClientOrderId"]
        qty = Decimal(q["quantity"])
        self.placements[client_id] += 1
        order_id, self.next_order_id = self.next_order_id, self.next_order_id + 1
        market = q.get("type") == "MARKET"
        order: dict[str, Any] = {
            "clientOrderId": client_id,
            "cumQty": "0",
            "cumQuote": "0",
            "executedQty": "0",
            "orderId": order_id,
            "avgPrice": "0.00",
            "origQty": str(qty),
            "price": "0" if market else q["price"],
            "reduceOnly": q.get("reduceOnly") == "true",
            "side": q["side"],
            "positionSide": "BOTH",
            "status": "NEW",
            "stopPrice": "0",
            "closePosition": False,
            "symbol": symbol,
            "timeInForce": q.get("timeInForce", "GTC"),
            "type": q["type"],
            "origType": q["type"],
            "updateTime": now_ms(),
            "workingType": "CONTRACT_PRICE",
            "priceProtect": False,
        }
        self.orders[client_id] = order
        price = self.prices[symbol]
        crosses = market or (
            Decimal(q["price"]) >= price if q["side"] == "BUY" else Decimal(q["price"]) <= price
        )
        if self.hold_open:
            pass
        elif not crosses:
            order["status"] = "EXPIRED"  # IOC: nothing at that price
        elif self.fill_parts <= 1:
            self._fill(order, qty, price)
            self._spawn(self._push_fill(order, qty, price))
        else:
            self._spawn(self._fill_in_parts(order, qty, price, self.fill_parts))
        return dict(order)

    def _fill(self, order: dict[str, Any], qty: Decimal, price: Decimal) -> None:
        filled = Decimal(order["executedQty"]) + qty
        order["executedQty"] = order["cumQty"] = str(filled)
        order["avgPrice"] = str(price)
        order["cumQuote"] = str(filled * price)
        order["status"] = "FILLED" if filled == Decimal(order["origQty"]) else "PARTIALLY_FILLED"
        order["updateTime"] = now_ms()
        sign = 1 if order["side"] == "BUY" else -1
        symbol = order["symbol"]
        self.positions[symbol] = self.positions.get(symbol, Decimal(0)) + sign * qty

    async def _fill_in_parts(
        self, order: dict[str, Any], qty: Decimal, price: Decimal, parts: int
    ) -> None:
        await asyncio.sleep(0)  # after the answer
        step = self.rules[order["symbol"]].step
        part = (qty / parts).quantize(step) or step
        left = qty
        while left > 0:
            this = min(part, left)
            left -= this
            self._fill(order, this, price)
            await self._push_fill(order, this, price)

    async def _push_fill(self, order: dict[str, Any], qty: Decimal, price: Decimal) -> None:
        at = now_ms()
        await self.push(
            {
                "e": "ORDER_TRADE_UPDATE",
                "E": at,
                "T": at,
                "o": {
                    "s": order["symbol"],
                    "c": order["clientOrderId"],
                    "S": order["side"],
                    "o": order["type"],
                    "f": order["timeInForce"],
                    "q": order["origQty"],
                    "p": order["price"],
                    "ap": order["avgPrice"],
                    "sp": "0",
                    "x": "TRADE",
                    "X": order["status"],
                    "i": order["orderId"],
                    "l": str(qty),
                    "z": order["executedQty"],
                    "L": str(price),
                    "N": "USDT",
                    "n": "0",
                    "T": at,
                    "t": at,
                    "R": order["reduceOnly"],
                    "ps": "BOTH",
                },
            }
        )
        symbol = order["symbol"]
        await self.push(
            {
                "e": "ACCOUNT_UPDATE",
                "E": at,
                "T": at,
                "a": {
                    "m": "ORDER",
                    "B": [{"a": "USDT", "wb": str(self.equity), "cw": str(self.equity), "bc": "0"}],
                    "P": [
                        {
                            "s": symbol,
                            "pa": str(self.positions.get(symbol, Decimal(0))),
                            "ep": str(price),
                            "cr": "0",
                            "up": "0",
                            "mt": "cross",
                            "iw": "0",
                            "ps": "BOTH",
                        }
                    ],
                },
            }
        )

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the stream -------------------------------------------------------------------------

    async def _ws(self, ws: WebSocket) -> None:
        key = ws.path_params.get("listen_key")
        if self.listen_key is None or key != self.listen_key:
            await ws.close(code=1008)
            return
        await ws.accept()
        self.connections += 1
        self.sockets.add(ws)
        self.mark_subscribed()
        try:
            while True:
                self.received.append(await ws.receive_text())
        except WebSocketDisconnect:
            pass
        finally:
            self.sockets.discard(ws)
