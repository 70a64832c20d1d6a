"""Binance USD-M Futures on loopback: listenKey, user data stream, signed REST with its limits.

What it checks as Binance does: the API key header on every call, the HMAC-SHA256 signature
of the exact query string (and a fresh timestamp) on signed calls, userTrades' rules (a
symbol, at most 7 days between startTime and endTime, no fromId with a time range, at most
1000 per page) and the listenKey in the stream's URL, in the current form only:
``/private/ws?listenKey=<key>`` (the legacy ``/ws/<listenKey>`` was retired on 2026-04-23 and
is refused here, and recorded in ``retired_calls``). Tests add trades with ``trade``: each
goes into the history (userTrades, income, force orders, positions) and comes back as the
ORDER_TRADE_UPDATE event to ``push`` live, or not (a fill made while disconnected).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route
from starlette.websockets import WebSocket, WebSocketDisconnect

from tests.venues.clock import in_recv_window
from tests.venues.harness import FakeVenue

SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000
FEE_RATE = Decimal("0.0004")


def error(status: int, code: int, msg: str) -> JSONResponse:
    return JSONResponse({"code": code, "msg": msg}, status_code=status)


def now_ms() -> int:
    return int(time.time() * 1000)


def order_trade_update(
    symbol: str, side: str, qty: str, price: str, trade_id: int, order_id: int, at: int
) -> dict[str, Any]:
    """An execution as the stream sends it (the documented ORDER_TRADE_UPDATE fields)."""
    return {
        "e": "ORDER_TRADE_UPDATE",
        "E": at + 3,
        "T": at,
        "o": {
            "s": symbol,
            "c": f"web_{order_id}",
            "S": side,
            "o": "MARKET",
            "f": "GTC",
            "q": qty,
            "p": "0",
            "ap": price,
            "sp": "0",
            "x": "TRADE",
            "X": "FILLED",
            "i": order_id,
            "l": qty,
            "z": qty,
            "L": price,
            "N": "USDT",
            "n": "0",
            "T": at,
            "t": trade_id,
            "b": "0",
            "a": "0",
            "m": False,
            "R": False,
            "wt": "CONTRACT_PRICE",
            "ot": "MARKET",
            "ps": "BOTH",
            "cp": False,
            "rp": "0",
            "pP": False,
            "si": 0,
            "ss": 0,
            "V": "EXPIRE_TAKER",
            "pm": "NONE",
            "gtd": 0,
        },
    }


@dataclass
class BinanceAccount(FakeVenue):
    """What both Binance fakes (a leader's account here, a follower's in
    binance_usdm_trading.py) check and serve alike: the request checks and the listenKey."""

    api_key: str = "binance-test-key-4f1c"
    api_secret: str = "binance-test-secret-9a7e"
    listen_key: str | None = None
    keepalives: int = 0

    async def _check(self, request: Request, signed: bool = True) -> JSONResponse | None:
        """Record ``request`` and check it as Binance does; the refusal to answer, if any.

        Every call carries the API key (``X-MBX-APIKEY``); a signed one also the HMAC-SHA256
        of its exact query string, as ``signature``, and a ``timestamp`` within ``recvWindow``.
        """
        call = await self.record(request)
        query, _, signature = request.url.query.rpartition("&signature=")
        params = request.query_params
        refused = self.refusal(
            call.headers.get("x-mbx-apikey"),
            query if signed else None,
            signature,
            params.get("timestamp", "0"),
            params.get("recvWindow", "5000"),
        )
        return error(*refused) if refused else None

    def refusal(
        self,
        api_key: str | None,
        payload: str | None,
        signature: str,
        timestamp: str,
        recv_window: str,
    ) -> tuple[int, int, str] | None:
        """(status, code, msg) when Binance would refuse the key, the HMAC-SHA256 signature
        of ``payload`` (None: an unsigned request) or the time; REST's and ws-fapi's check."""
        if api_key != self.api_key:
            return 401, -2015, "Invalid API-key, IP, or permissions for action."
        if payload is None:
            return None
        expected = hmac.new(self.api_secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature, expected):
            return 400, -1022, "Signature for this request is not valid."
        if not in_recv_window(timestamp, recv_window):
            return 400, -1021, "Timestamp for this request is outside of the recvWindow."
        return None

    async def _listen_key(self, request: Request) -> JSONResponse:
        if refused := await self._check(request, signed=False):
            return refused
        if request.method == "POST":
            # "Doing a POST on an account with an active listenKey will return the currently
            # active listenKey and extend its validity."
            self.listen_key = self.listen_key or secrets.token_urlsafe(48)[:64]
        elif self.listen_key is None:
            return error(400, -1125, "This listenKey does not exist.")
        elif request.method == "PUT":
            self.keepalives += 1
        else:
            self.listen_key = None
            return JSONResponse({})
        return JSONResponse({"listenKey": self.listen_key})


@dataclass
class FakeBinanceUsdm(BinanceAccount):
    ws_path: str = "/private/ws"
    equity: Decimal = Decimal("100000")
    # False: stream connections are refused (a venue gateway that is down).
    accepting: bool = True
    positions: dict[str, Decimal] = field(default_factory=dict)
    # Mark prices positionRisk reports (entryPrice too), per symbol.
    marks: dict[str, str] = field(default_factory=dict)
    trades: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    income: list[dict[str, Any]] = field(default_factory=list)
    force_orders: list[dict[str, Any]] = field(default_factory=list)
    # Binance numbers trades per symbol: every symbol starts at the same id here, so a fill
    # id made of the trade id alone would collide.
    first_trade_id: int = 5001
    next_order_id: int = 880_000_001
    _last_trade_id: dict[str, int] = field(default_factory=dict)

    # -- test controls ----------------------------------------------------------------------

    def trade(
        self,
        symbol: str,
        side: str,
        qty: str,
        price: str,
        *,
        client_order_id: str | None = None,
        order_id: int | None = None,
        order_type: str = "MARKET",
        reduce_only: bool = False,
        status: str = "FILLED",
        at_ms: int | None = None,
        in_history: bool = True,
    ) -> dict[str, Any]:
        """Record one execution; returns its ORDER_TRADE_UPDATE event. ``in_history`` False:
        the REST history does not show it (yet), only the stream will."""
        history = self.trades.setdefault(symbol, [])
        trade_id = self._last_trade_id.get(symbol, self.first_trade_id - 1) + 1
        self._last_trade_id[symbol] = trade_id
        if order_id is None:
            order_id = self.next_order_id
            self.next_order_id += 1
        client_order_id = client_order_id or f"web_{order_id}"
        at = at_ms or now_ms()
        commission = (Decimal(qty) * Decimal(price) * FEE_RATE).quantize(Decimal("0.00000001"))
        signed = Decimal(qty) if side == "BUY" else -Decimal(qty)
        self.positions[symbol] = self.positions.get(symbol, Decimal(0)) + signed
        event = order_trade_update(symbol, side, qty, price, trade_id, order_id, at)
        event["o"].update(
            {
                "c": client_order_id,
                "o": order_type,
                "ot": order_type,
                "X": status,
                "R": reduce_only,
                "n": str(commission),
            }
        )
        if not in_history:
            return event
        history.append(
            {
                "buyer": side == "BUY",
                "commission": str(commission),
                "commissionAsset": "USDT",
                "id": trade_id,
                "maker": False,
                "orderId": order_id,
                "price": price,
                "qty": qty,
                "quoteQty": str(Decimal(qty) * Decimal(price)),
                "realizedPnl": "0",
                "side": side,
                "positionSide": "BOTH",
                "symbol": symbol,
                "time": at,
            }
        )
        self.income.append(
            {
                "symbol": symbol,
                "incomeType": "COMMISSION",
                "income": str(-commission),
                "asset": "USDT",
                "info": "COMMISSION",
                "time": at,
                "tranId": len(self.income) + 1,
                "tradeId": str(trade_id),
            }
        )
        forced = client_order_id.startswith(("autoclose-", "adl_autoclose"))
        if forced and all(o["orderId"] != order_id for o in self.force_orders):
            self.force_orders.append(
                {
                    "orderId": order_id,
                    "symbol": symbol,
                    "status": "FILLED",
                    "clientOrderId": client_order_id,
                    "price": price,
                    "avgPrice": price,
                    "origQty": qty,
                    "executedQty": qty,
                    "side": side,
                    "positionSide": "BOTH",
                    "type": "LIMIT",
                    "origType": "LIMIT",
                    "time": at,
                    "updateTime": at,
                }
            )
        return event

    async def expire_listen_key(self) -> None:
        """The venue lets the listenKey lapse: the event, then nothing more on this key."""
        key, self.listen_key = self.listen_key, None
        await self.push({"e": "listenKeyExpired", "E": str(now_ms()), "listenKey": key})

    def calls(self, path: str) -> list[dict[str, str]]:
        return [call.query for call in self.rest_calls if call.path == path]

    # -- REST -------------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/fapi/v1/listenKey", self._listen_key, methods=["POST", "PUT", "DELETE"]),
            Route("/fapi/v1/userTrades", self._user_trades),
            Route("/fapi/v1/income", self._income),
            Route("/fapi/v1/forceOrders", self._force_orders),
            Route("/fapi/v3/positionRisk", self._position_risk),
            Route("/fapi/v3/account", self._account),
        ]

    async def _user_trades(self, request: Request) -> JSONResponse:
        if refused := await self._check(request):
            return refused
        q = request.query_params
        if "symbol" not in q:
            return error(400, -1102, "Mandatory parameter 'symbol' was not sent.")
        limit = int(q.get("limit", "500"))
        if not 1 <= limit <= 1000:
            return error(400, -1130, "Invalid data sent for a parameter.")
        history = self.trades.get(q["symbol"], [])
        if "fromId" in q:
            if "startTime" in q or "endTime" in q:
                return error(400, -1128, "Combination of optional parameters invalid.")
            rows = [t for t in history if t["id"] >= int(q["fromId"])]
        else:
            end = int(q.get("endTime", now_ms()))
            start = int(q.get("startTime", end - SEVEN_DAYS_MS))
            if end - start > SEVEN_DAYS_MS:
                return error(400, -1127, "More than 7 days between startTime and endTime.")
            rows = [t for t in history if start <= t["time"] <= end]
        return JSONResponse(rows[:limit])

    async def _income(self, request: Request) -> JSONResponse:
        if refused := await self._check(request):
            return refused
        q = request.query_params
        limit = int(q.get("limit", "100"))
        if not 1 <= limit <= 1000:
            return error(400, -1130, "Invalid data sent for a parameter.")
        start, end = int(q.get("startTime", "0")), int(q.get("endTime", now_ms()))
        rows = sorted(
            (r for r in self.income if start <= r["time"] <= end), key=lambda r: r["time"]
        )
        return JSONResponse(rows[:limit])

    async def _force_orders(self, request: Request) -> JSONResponse:
        if refused := await self._check(request):
            return refused
        q = request.query_params
        limit = int(q.get("limit", "50"))
        if not 1 <= limit <= 100:
            return error(400, -1130, "Invalid data sent for a parameter.")
        end = int(q.get("endTime", now_ms()))
        start = int(q.get("startTime", end - SEVEN_DAYS_MS))
        rows = [
            o
            for o in self.force_orders
            if o["symbol"] == q.get("symbol", o["symbol"]) and start <= o["time"] <= end
        ]
        return JSONResponse(rows[:limit])

    async def _position_risk(self, request: Request) -> JSONResponse:
        # v3 lists only the symbols with a position or open orders.
        if refused := await self._check(request):
            return refused
        rows = [
            {
                "symbol": name,
                "positionSide": "BOTH",
                "positionAmt": str(amount),
                "entryPrice": self.marks.get(name, "0.0"),
                "breakEvenPrice": "0.0",
                "markPrice": self.marks.get(name, "0.0"),
                "unRealizedProfit": "0.00000000",
                "liquidationPrice": "0",
                "isolatedMargin": "0",
                "notional": "0",
                "marginAsset": "USDT",
                "isolatedWallet": "0",
                "initialMargin": "0",
                "maintMargin": "0",
                "positionInitialMargin": "0",
                "openOrderInitialMargin": "0",
                "adl": 0,
                "bidNotional": "0",
                "askNotional": "0",
                "updateTime": now_ms(),
            }
            for name, amount in sorted(self.positions.items())
            if amount != 0
        ]
        return JSONResponse(rows)

    async def _account(self, request: Request) -> JSONResponse:
        if refused := await self._check(request):
            return refused
        equity = str(self.equity)
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
                "positions": [],
            }
        )

    # -- the stream -------------------------------------------------------------------------

    def retired_routes(self) -> list[BaseRoute]:
        # The legacy user data stream URL, retired on 2026-04-23.
        return [self.retired_websocket("/ws/{listen_key}")]

    async def _ws(self, ws: WebSocket) -> None:
        # The listenKey in the query is the stream's only credential.
        key = ws.query_params.get("listenKey")
        if not self.accepting or self.listen_key is None or key != self.listen_key:
            await ws.close(code=1008)
            return
        await ws.accept()
        self.connections += 1
        self.sockets.add(ws)
        # Nothing to subscribe to: the stream is live as soon as it is open.
        self.mark_subscribed()
        try:
            while True:
                self.received.append(await ws.receive_text())
        except WebSocketDisconnect:
            pass
        finally:
            self.sockets.discard(ws)
