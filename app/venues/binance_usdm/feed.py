"""Binance USD-M Futures: the user data stream, signed REST, trade history backfill.

Formats and rules from Binance's USD-M Futures docs
(https://developers.binance.com/docs/derivatives/usds-margined-futures/):

- The stream is keyed by a listenKey: ``POST /fapi/v1/listenKey`` (API key header only)
  creates it, ``PUT`` extends it by 60 minutes, and ``<ws_url>/private/ws?listenKey=<key>``
  streams it (the base URL split of 2026-03-06; the legacy ``/ws/<listenKey>`` was retired on
  2026-04-23). ``listenKeyExpired`` means no further events will come on this connection.
- Positions: ``GET /fapi/v3/positionRisk`` (with ``markPrice``); the stream's
  ``ACCOUNT_UPDATE`` is not used, the listener compares positionRisk on an interval.
- Fills are ``ORDER_TRADE_UPDATE`` events with execution type ``x == "TRADE"``, one execution
  per event. Liquidation orders have client order ids starting ``autoclose-``, ADL orders
  ``adl_autoclose``, delisting/delivery settlements ``settlement_autoclose-``.
- Signed REST: ``signing.BinanceSigner``, the execution client's signer too.
- ``GET /fapi/v1/userTrades`` needs a symbol, spans at most 7 days per call (or pages by
  ``fromId``, which excludes a time range), returns at most 1000 trades, ascending.

Binance numbers trades per symbol, so a fill id is ``<symbol>:<trade id>``: the trade id
alone is not unique in an account that trades several symbols.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

from app.domain.model import Fill, Side
from app.ingest.frames import FrameError
from app.venues.binance_usdm.signing import BinanceSigner
from app.venues.feed import (
    BadRow,
    Item,
    StreamExpired,
    VenueAdapter,
    VenueError,
    VenuePosition,
    WebSocketLike,
)
from app.venues.parsing import (
    decimal,
    epoch_ms,
    load_json,
    load_object,
    positive_decimal,
    symbol,
    text,
    to_epoch_ms,
)

# Client order ids Binance gives the orders it places itself (Event: Order Update). A
# settlement closes the position like a liquidation does, and userTrades lists it like any
# trade: it is a fill (so the stream and the backfill agree on the position), flagged forced.
FORCED_PREFIXES = ("autoclose-", "adl_autoclose", "settlement_autoclose-")
TRADES_PAGE = 1000  # userTrades: "Default 500; max 1000."
INCOME_PAGE = 1000  # income: "Default 100; max 1000"
FORCE_ORDERS_PAGE = 100  # forceOrders: "Default 50; max 100."
# "The time between startTime and endTime cannot be longer than 7 days."
TRADES_WINDOW_MS = 7 * 24 * 3600 * 1000 - 1
# "Only support querying trade in the past 6 months": older starts are clamped.
TRADES_HISTORY = timedelta(days=180)
# "This listenKey does not exist." (on PUT): recreate it, i.e. reconnect.
LISTEN_KEY_MISSING = -1125


def _side(value: object, field: str) -> Side:
    if value == "BUY":
        return Side.BUY
    if value == "SELL":
        return Side.SELL
    raise FrameError(f"{field}: expected BUY or SELL")


def _positive_int(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise FrameError(f"{field}: expected a positive integer")
    return value


def _fee(value: object, field: str) -> Decimal:
    # The docs show a charged commission with either sign (the stream's "n" positive,
    # userTrades' example "-0.07819010"): the fee is a cost, kept positive.
    return abs(decimal(value, field))


def is_forced(client_order_id: str) -> bool:
    """Binance's own order: a liquidation, an ADL, or a delisting/delivery settlement."""
    return client_order_id.startswith(FORCED_PREFIXES)


class BinanceUsdmAdapter(VenueAdapter):
    kind: ClassVar[str] = "binance-usdm"
    # "It's recommended to send a ping about every 60 minutes"; a listenKey lives 60 minutes.
    keepalive_interval_s: ClassVar[float | None] = 30 * 60

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Symbols this leader traded or held, from the stream and REST: the backfill asks
        # each of them for trades (userTrades takes one symbol per call).
        self._symbols: set[str] = set()

    # -- the stream -------------------------------------------------------------------------

    async def ws_url(self) -> str:
        body = await self._request("POST", "/fapi/v1/listenKey", signed=False)
        if not isinstance(body, dict) or not isinstance(body.get("listenKey"), str):
            raise VenueError("POST /fapi/v1/listenKey: no listenKey in the answer")
        key = quote(body["listenKey"], safe="")
        return f"{str(self.config['ws_url']).rstrip('/')}/private/ws?listenKey={key}"

    async def on_open(self, ws: WebSocketLike) -> None:
        # The listenKey in the URL is the authentication; nothing to send.
        return None

    async def keepalive(self) -> None:
        try:
            await self._request("PUT", "/fapi/v1/listenKey", signed=False)
        except _ApiError as exc:
            if exc.code == LISTEN_KEY_MISSING:
                raise StreamExpired(str(exc)) from exc
            raise

    def parse(self, raw: str | bytes, received_at: datetime) -> list[Item]:
        message = load_object(raw)
        event = message.get("e")
        if event == "listenKeyExpired":
            raise StreamExpired("the venue expired the listenKey")
        if event != "ORDER_TRADE_UPDATE":
            return []  # ACCOUNT_UPDATE, MARGIN_CALL, TRADE_LITE, ...: not fills
        order = message.get("o")
        try:
            if not isinstance(order, dict):
                raise FrameError("o: expected an object")
            if text(order.get("x"), "o.x") != "TRADE":
                return []  # NEW, CANCELED, CALCULATED, EXPIRED, AMENDMENT: no execution
            return [self._stream_fill(order, received_at)]
        except FrameError as exc:
            # One execution per event: the event is the row.
            return [BadRow.of(message, exc)]

    def _stream_fill(self, order: Mapping[str, Any], received_at: datetime) -> Fill:
        name = symbol(order.get("s"), "o.s")
        client_id = order.get("c")
        reduce_only = order.get("R")
        if not isinstance(reduce_only, bool):
            raise FrameError("o.R: expected a boolean")
        fee = _fee(order["n"], "o.n") if "n" in order else None
        fill = Fill(
            leader_id=self.leader_id,
            fill_id=f"{name}:{_positive_int(order.get('t'), 'o.t')}",
            symbol=name,
            side=_side(order.get("S"), "o.S"),
            qty=positive_decimal(order.get("l"), "o.l"),
            price=positive_decimal(order.get("L"), "o.L"),
            event_at=epoch_ms(order.get("T"), "o.T", received_at),
            received_at=received_at,
            fee=fee,
            fee_asset=text(order.get("N"), "o.N", 32) if fee is not None else None,
            reduce_only=reduce_only,
            liquidation=(
                (isinstance(client_id, str) and is_forced(client_id))
                or order.get("o") == "LIQUIDATION"
            ),
        )
        self._symbols.add(name)
        return fill

    # -- REST state -------------------------------------------------------------------------

    async def fetch_equity(self) -> Decimal:
        body = await self._request("GET", "/fapi/v3/account")
        if not isinstance(body, dict):
            raise VenueError("GET /fapi/v3/account: expected an object")
        return decimal(body.get("totalMarginBalance"), "totalMarginBalance")

    async def positions(self) -> list[VenuePosition]:
        body = await self._request("GET", "/fapi/v3/positionRisk")
        if not isinstance(body, list):
            raise VenueError("GET /fapi/v3/positionRisk: expected a list")
        amounts: dict[str, Decimal] = {}
        marks: dict[str, Decimal] = {}
        try:
            for row in body:
                if not isinstance(row, dict):
                    raise FrameError("expected objects")
                name = symbol(row.get("symbol"))
                # Hedge mode lists LONG and SHORT rows (SHORT negative): their sum is the net.
                amount = decimal(row.get("positionAmt"), "positionAmt")
                if amount:
                    amounts[name] = amounts.get(name, Decimal(0)) + amount
                    for field in ("markPrice", "entryPrice"):
                        price = decimal(row.get(field, "0"), field)
                        if price > 0:
                            marks[name] = price
                            break
        except FrameError as exc:
            raise VenueError(f"GET /fapi/v3/positionRisk: {exc}") from exc
        self._symbols.update(amounts)
        return [VenuePosition(name, qty, marks.get(name)) for name, qty in amounts.items() if qty]

    # -- backfill ---------------------------------------------------------------------------

    async def backfill(self, since: datetime, received_at: datetime) -> AsyncIterator[list[Item]]:
        """7-day windows (userTrades' widest), oldest first: every symbol's trades in a
        window, in exchange order, then the next window."""
        now_ms = int(time.time() * 1000)
        since_ms = max(to_epoch_ms(since), to_epoch_ms(received_at - TRADES_HISTORY))
        symbols = await self._backfill_symbols(since_ms, now_ms)
        forced: dict[str, set[int]] = {}
        start = since_ms
        while start <= now_ms:
            end = min(start + TRADES_WINDOW_MS, now_ms)
            batch: list[tuple[int, int, str, Item]] = []
            for name in sorted(symbols):
                trades = await self._user_trades(name, start, end)
                if not trades:
                    continue
                if name not in forced:
                    forced[name] = await self._forced_order_ids(name, since_ms, now_ms)
                for trade in trades:
                    try:
                        trade_id, fill = self._history_fill(trade, name, forced[name], received_at)
                    except FrameError as exc:
                        batch.append((start, 0, name, BadRow.of(trade, exc)))
                        continue
                    if fill.event_at >= since:
                        batch.append((to_epoch_ms(fill.event_at), trade_id, name, fill))
            batch.sort(key=lambda row: row[:3])
            yield [item for *_, item in batch]
            start = end + 1

    async def _backfill_symbols(self, since_ms: int, now_ms: int) -> set[str]:
        """Every symbol that may have trades since ``since_ms``: those seen, those held now,
        and those with income (commission, realized PnL, ...) since then, which catches a
        position opened and closed while the stream was down."""
        symbols = set(self._symbols) | set(await self.fetch_positions())
        start = since_ms
        while True:
            page = await self._request(
                "GET",
                "/fapi/v1/income",
                {"startTime": start, "endTime": now_ms, "limit": INCOME_PAGE},
            )
            if not isinstance(page, list):
                raise VenueError("GET /fapi/v1/income: expected a list")
            for row in page:
                if isinstance(row, dict) and row.get("symbol"):
                    symbols.add(symbol(row["symbol"], "income.symbol"))
            if len(page) < INCOME_PAGE:
                return symbols
            # Ascending from startTime (inclusive): go on from the last entry's time, a
            # millisecond later if a whole page shared one time.
            last = page[-1].get("time") if isinstance(page[-1], dict) else None
            if isinstance(last, bool) or not isinstance(last, int):
                raise VenueError("GET /fapi/v1/income: an entry without a time")
            start = max(last, start + 1)

    async def _user_trades(self, name: str, start: int, end: int) -> list[Any]:
        """Every trade in ``name`` from ``start`` to ``end``: one time-ranged page, then pages
        by ``fromId`` (which takes no time range) until past ``end``."""
        page = await self._trades_page(name, startTime=start, endTime=end)
        trades = list(page)
        while len(page) >= TRADES_PAGE:
            last_id = max(
                (t["id"] for t in trades if isinstance(t, dict) and isinstance(t.get("id"), int)),
                default=None,
            )
            if last_id is None:
                raise VenueError("GET /fapi/v1/userTrades: a full page without a trade id")
            page = await self._trades_page(name, fromId=last_id + 1)
            inside = [t for t in page if not isinstance(t, dict) or _time(t) <= end]
            trades.extend(inside)
            if len(inside) < len(page):
                break
        return trades

    async def _trades_page(self, name: str, **params: int) -> list[Any]:
        page = await self._request(
            "GET", "/fapi/v1/userTrades", {"symbol": name, **params, "limit": TRADES_PAGE}
        )
        if not isinstance(page, list):
            raise VenueError("GET /fapi/v1/userTrades: expected a list")
        return page

    async def _forced_order_ids(self, name: str, since_ms: int, now_ms: int) -> set[int]:
        """Ids of the liquidation and ADL orders in ``name``: userTrades does not say which
        trades were forced, the force orders list does."""
        ids: set[int] = set()
        start = since_ms
        while True:
            page = await self._request(
                "GET",
                "/fapi/v1/forceOrders",
                {"symbol": name, "startTime": start, "endTime": now_ms, "limit": FORCE_ORDERS_PAGE},
            )
            if not isinstance(page, list):
                raise VenueError("GET /fapi/v1/forceOrders: expected a list")
            times: list[int] = []
            for row in page:
                if not isinstance(row, dict):
                    raise VenueError("GET /fapi/v1/forceOrders: expected objects")
                ids.add(_positive_int(row.get("orderId"), "orderId"))
                times.append(_positive_int(row.get("time"), "time"))
            if len(page) < FORCE_ORDERS_PAGE:
                return ids
            # The order of the answer is not documented: go on after its newest order.
            start = max(max(times) + 1, start + 1)

    def _history_fill(
        self, trade: object, name: str, forced: set[int], received_at: datetime
    ) -> tuple[int, Fill]:
        if not isinstance(trade, dict):
            raise FrameError("userTrades: expected objects")
        if trade.get("symbol") != name:
            raise FrameError("userTrades: a trade of another symbol")
        trade_id = _positive_int(trade.get("id"), "id")
        fee = _fee(trade["commission"], "commission") if "commission" in trade else None
        return trade_id, Fill(
            leader_id=self.leader_id,
            fill_id=f"{name}:{trade_id}",
            symbol=name,
            side=_side(trade.get("side"), "side"),
            qty=positive_decimal(trade.get("qty"), "qty"),
            price=positive_decimal(trade.get("price"), "price"),
            event_at=epoch_ms(trade.get("time"), "time", received_at),
            received_at=received_at,
            fee=fee,
            fee_asset=text(trade.get("commissionAsset"), "commissionAsset", 32)
            if fee is not None
            else None,
            # userTrades does not carry the order's reduce-only flag.
            reduce_only=None,
            liquidation=trade.get("orderId") in forced,
        )

    # -- signed REST ------------------------------------------------------------------------

    @cached_property
    def _signer(self) -> BinanceSigner:
        return BinanceSigner(self.credentials["api_key"], self.credentials["api_secret"])

    async def _request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str | int] | None = None,
        *,
        signed: bool = True,
    ) -> Any:
        """One REST call. Signed calls carry timestamp, recvWindow and the signature of the
        exact query string sent; listenKey calls (USER_STREAM) carry the API key only."""
        if signed:
            query = self._signer.query(params or {}, int(time.time() * 1000))
        else:
            query = urlencode(dict(params or {}))
        url = f"{path}?{query}" if query else path
        headers = self._signer.headers()
        response = await self.rest(method, url, headers=headers)
        try:
            body = load_json(response.content)
        except FrameError as exc:
            raise VenueError(f"{method} {path}: HTTP {response.status_code}, not JSON") from exc
        if response.status_code != 200:
            code = body.get("code") if isinstance(body, dict) else None
            msg = body.get("msg") if isinstance(body, dict) else None
            raise _ApiError(f"{method} {path}: HTTP {response.status_code} {code} {msg}", code)
        return body


def _time(trade: dict[str, Any]) -> int:
    at = trade.get("time")
    return at if isinstance(at, int) and not isinstance(at, bool) else 0


class _ApiError(VenueError):
    """Binance answered with an error payload ({"code": -1125, "msg": "..."})."""

    def __init__(self, message: str, code: object) -> None:
        super().__init__(message[:300])
        self.code = code
