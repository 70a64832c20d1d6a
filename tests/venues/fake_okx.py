"""OKX v5 on loopback: the private websocket (login, orders subscription, ping/pong) and the
REST endpoints the adapter reads, each checking the request signature as OKX documents it.

Trades are kept once and rendered in both of OKX's formats: an orders-channel update (``push``)
and a fills row (``history``, paged by billId as /api/v5/trade/fills and /fills-history do).
A subscription by ``uly`` (retired for ``instFamily``) is refused with an error.
"""

from __future__ import annotations

import hmac
import itertools
import time
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route
from starlette.websockets import WebSocket

from app.venues.okx.signing import sign
from tests.venues.harness import FakeVenue

API_KEY = "okx-test-key-0f4e"
API_SECRET = "22582BD0CFF14C41EDBF1AB98506286D"  # the docs' example SecretKey
PASSPHRASE = "okx-test-passphrase"

LIQUIDATION_SUBTYPES = {
    ("full_liquidation", "long"): "104",
    ("full_liquidation", "short"): "105",
    ("partial_liquidation", "long"): "100",
    ("partial_liquidation", "short"): "101",
    ("adl", "long"): "125",
    ("adl", "short"): "126",
}


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Trade:
    """One execution of the leader's account, in contracts."""

    inst_id: str
    trade_id: str
    side: str
    contracts: str
    price: str
    pos_side: str = "net"
    category: str = "normal"
    reduce_only: bool = False
    fee: str = "-0.01"
    fee_ccy: str = "USDT"
    fill_time: int = field(default_factory=now_ms)
    ord_id: str = "1"
    inst_type: str = "SWAP"

    def order_row(self, **extra: Any) -> dict[str, Any]:
        """The orders-channel update of this fill (the documented push fields)."""
        return {
            "accFillSz": self.contracts,
            "algoClOrdId": "",
            "algoId": "",
            "avgPx": self.price,
            "cTime": str(self.fill_time - 5),
            "category": self.category,
            "ccy": "USDT",
            "clOrdId": "",
            "code": "0",
            "execType": "T" if self.category == "normal" else "",
            "fee": self.fee,
            "feeCcy": self.fee_ccy,
            "fillFee": self.fee,
            "fillFeeCcy": self.fee_ccy,
            "fillPnl": "0",
            "fillPx": self.price,
            "fillSz": self.contracts,
            "fillTime": str(self.fill_time),
            "instId": self.inst_id,
            "instType": self.inst_type,
            "lever": "10",
            "msg": "",
            "ordId": self.ord_id,
            "ordType": "market",
            "pnl": "0",
            "posSide": self.pos_side,
            "px": "",
            "rebate": "0",
            "rebateCcy": "USDT",
            "reduceOnly": "true" if self.reduce_only else "false",
            "side": self.side,
            "source": "",
            "state": "filled",
            "sz": self.contracts,
            "tag": "",
            "tdMode": "cross",
            "tradeId": self.trade_id,
            "uTime": str(self.fill_time + 1),
            **extra,
        }

    def history_row(self, bill_id: int) -> dict[str, Any]:
        """The same fill as GET /api/v5/trade/fills returns it."""
        return {
            "instType": self.inst_type,
            "instId": self.inst_id,
            "tradeId": self.trade_id,
            "ordId": self.ord_id,
            "clOrdId": "",
            "billId": str(bill_id),
            "subType": self.sub_type(),
            "tag": "",
            "fillPx": self.price,
            "fillSz": self.contracts,
            "fillPnl": "0",
            "fillMarkPx": self.price,
            "side": self.side,
            "posSide": self.pos_side,
            "execType": "T" if self.category == "normal" else "",
            "feeCcy": self.fee_ccy,
            "fee": self.fee,
            "ts": str(self.fill_time + 1),
            "fillTime": str(self.fill_time),
        }

    def sub_type(self) -> str:
        direction = self.pos_side
        if direction == "net":
            direction = "short" if self.side == "buy" else "long"  # the position it reduces
        if self.category in ("full_liquidation", "partial_liquidation", "adl"):
            if self.pos_side == "net":
                base = {"full_liquidation": 106, "partial_liquidation": 102, "adl": 127}
                return str(base[self.category] + (self.side == "sell"))
            return LIQUIDATION_SUBTYPES[(self.category, direction)]
        if self.category == "delivery":
            return "112" if direction == "long" else "113"
        if self.pos_side == "net":
            return "1" if self.side == "buy" else "2"
        opening = (self.pos_side == "long") == (self.side == "buy")
        return {(True, "long"): "3", (True, "short"): "4", (False, "long"): "5"}.get(
            (opening, self.pos_side), "6"
        )


def instrument(inst_id: str, ct_val: str, ct_type: str = "linear") -> dict[str, Any]:
    family = inst_id.rsplit("-", 1)[0]
    return {
        "instType": "SWAP",
        "instId": inst_id,
        "instFamily": family,
        "uly": family,
        "ctVal": ct_val,
        "ctMult": "1",
        "ctType": ct_type,
        "ctValCcy": family.split("-")[0] if ct_type == "linear" else "USD",
        "settleCcy": family.split("-")[1] if ct_type == "linear" else family.split("-")[0],
        "lotSz": "0.01",
        "minSz": "0.01",
        "tickSz": "0.1",
        "state": "live",
    }


@dataclass
class FakeOkx(FakeVenue):
    ws_path: str = "/ws/v5/private"
    simulated: bool = False
    instruments: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            "BTC-USDT-SWAP": instrument("BTC-USDT-SWAP", "0.01"),
            "ETH-USDT-SWAP": instrument("ETH-USDT-SWAP", "0.1"),
            "BTC-USD-SWAP": instrument("BTC-USD-SWAP", "100", "inverse"),
        }
    )
    total_eq: str = "100000"
    positions: list[dict[str, Any]] = field(default_factory=list)
    # (billId, row), oldest first; billIds grow with time as OKX's do.
    history: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    bill_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(7000))
    logins: int = 0
    # A broken venue that ignores the paging cursor (the adapter must not loop forever).
    ignore_after: bool = False
    refused: list[str] = field(default_factory=list)  # why requests were refused
    _logged_in: weakref.WeakSet[WebSocket] = field(default_factory=weakref.WeakSet)

    # -- what tests do -----------------------------------------------------------------

    def add_history(self, *trades: Trade) -> None:
        """Record fills in the account's history only (as if made while we were away)."""
        for trade in trades:
            bill_id = next(self.bill_ids)
            self.history.append((bill_id, trade.history_row(bill_id)))

    async def push_orders(self, *rows: dict[str, Any]) -> None:
        """One orders-channel message with these update rows."""
        arg = {"channel": "orders", "instType": "SWAP", "uid": "614488474791936"}
        await self.push({"arg": arg, "data": list(rows)})

    async def trade(self, *trades: Trade) -> None:
        """Fills that happen now: in the history and pushed live, in one message."""
        self.add_history(*trades)
        await self.push_orders(*(trade.order_row() for trade in trades))

    # -- websocket -----------------------------------------------------------------------

    async def on_message(self, ws: WebSocket, message: Any) -> None:
        if message == "ping":
            await self.send(ws, "pong")
            return
        if not isinstance(message, dict):
            await self.send(ws, {"event": "error", "code": "60012", "msg": "Invalid request"})
            return
        if message.get("op") == "login":
            await self._login(ws, message["args"][0])
        elif message.get("op") == "subscribe":
            if ws not in self._logged_in:
                await self.send(ws, {"event": "error", "code": "60011", "msg": "Please log in"})
                return
            arg = message["args"][0]
            if "uly" in arg:
                # Retired in 2023 for instFamily: OKX answers an error.
                self.retired_calls.append("subscribe uly")
                error = {"event": "error", "code": "60018", "msg": "Parameter uly not supported"}
                await self.send(ws, error)
                return
            ack = {"id": message.get("id"), "event": "subscribe", "arg": arg, "connId": "c1"}
            await self.send(ws, ack)
            self.mark_subscribed()

    async def _login(self, ws: WebSocket, args: dict[str, Any]) -> None:
        ts = args.get("timestamp", "")
        expected = sign(API_SECRET, f"{ts}GET/users/self/verify")
        fresh = ts.isdigit() and abs(int(ts) - time.time()) < 30
        if (
            args.get("apiKey") == API_KEY
            and args.get("passphrase") == PASSPHRASE
            and fresh
            and hmac.compare_digest(str(args.get("sign")), expected)
        ):
            self.logins += 1
            self._logged_in.add(ws)
            await self.send(ws, {"event": "login", "code": "0", "msg": "", "connId": "c1"})
        else:
            self.refused.append("ws login")
            await self.send(
                ws, {"event": "error", "code": "60009", "msg": "Login failed.", "connId": "c1"}
            )

    # -- REST ----------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/v5/public/instruments", self._instruments),
            Route("/api/v5/account/balance", self._balance),
            Route("/api/v5/account/positions", self._positions),
            Route("/api/v5/trade/fills", self._fills),
            Route("/api/v5/trade/fills-history", self._fills_history),
        ]

    def _refuse(self, reason: str, code: str = "50113") -> JSONResponse:
        self.refused.append(reason)
        return JSONResponse({"code": code, "msg": reason, "data": []}, status_code=401)

    async def _authorized(self, request: Request) -> JSONResponse | None:
        """None if the request carries OKX's headers with a valid signature."""
        call = await self.record(request)
        if self.simulated and call.headers.get("x-simulated-trading") != "1":
            return self._refuse("demo trading without x-simulated-trading", "50101")
        if call.headers.get("ok-access-key") != API_KEY:
            return self._refuse("bad key", "50111")
        if call.headers.get("ok-access-passphrase") != PASSPHRASE:
            return self._refuse("bad passphrase", "50105")
        ts = call.headers.get("ok-access-timestamp", "")
        try:
            at = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        except ValueError:
            return self._refuse("timestamp format", "50112")
        if len(ts) != 24 or abs(at - datetime.now(UTC)) > timedelta(seconds=30):
            return self._refuse("timestamp expired", "50102")
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        expected = sign(API_SECRET, f"{ts}{request.method}{path}")
        if not hmac.compare_digest(call.headers.get("ok-access-sign", ""), expected):
            return self._refuse("Invalid Sign")
        return None

    async def _instruments(self, request: Request) -> JSONResponse:
        await self.record(request)
        inst_id = request.query_params.get("instId")
        rows = [row for key, row in self.instruments.items() if inst_id in (None, key)]
        if inst_id and not rows:
            return JSONResponse({"code": "51001", "msg": "Instrument ID does not exist"}, 400)
        return _ok(rows)

    async def _balance(self, request: Request) -> JSONResponse:
        if refused := await self._authorized(request):
            return refused
        # The documented response, trimmed to the account-level fields.
        return _ok([{"adjEq": self.total_eq, "totalEq": self.total_eq, "details": [], "upl": "0"}])

    async def _positions(self, request: Request) -> JSONResponse:
        if refused := await self._authorized(request):
            return refused
        return _ok(self.positions)

    async def _fills(self, request: Request) -> JSONResponse:
        # The last 3 days only.
        return await self._page(request, now_ms() - 3 * 86_400_000, required_type=False)

    async def _fills_history(self, request: Request) -> JSONResponse:
        return await self._page(request, now_ms() - 90 * 86_400_000, required_type=True)

    async def _page(self, request: Request, oldest_ts: int, required_type: bool) -> JSONResponse:
        if refused := await self._authorized(request):
            return refused
        q = request.query_params
        if required_type and not q.get("instType"):
            return JSONResponse({"code": "50014", "msg": "instType is required"}, 400)
        limit = int(q.get("limit", "100"))
        if not 1 <= limit <= 100:
            return JSONResponse({"code": "51000", "msg": "Parameter limit error"}, 400)
        rows = []
        for bill_id, row in reversed(self.history):  # newest first
            ts = int(row["ts"])
            if ts < oldest_ts or (q.get("instType") and row["instType"] != q["instType"]):
                continue
            if "begin" in q and ts <= int(q["begin"]):  # OKX's begin/end are exclusive
                continue
            if "end" in q and ts >= int(q["end"]):
                continue
            if "after" in q and not self.ignore_after and bill_id >= int(q["after"]):
                continue
            if "before" in q and bill_id <= int(q["before"]):
                continue
            rows.append(row)
        if "before" in q:
            rows = rows[-limit:]
        return _ok(rows[:limit])

    def calls(self, path: str) -> int:
        return sum(call.path == path for call in self.rest_calls)


def _ok(data: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse({"code": "0", "msg": "", "data": data})
