"""Bybit v5 (unified account), linear and inverse contracts.

Stream: the private websocket (``/v5/private``), authenticated with an ``auth`` frame signed
over ``"GET/realtime" + expires``, subscribed to the categorised ``execution.<category>``
topics (the all-in-one ``execution`` topic would also carry spot and option executions, and
the two kinds cannot share one request). Bybit drops a private connection that hears nothing
for a while, so the client sends ``{"op": "ping"}`` every 20 s as the docs recommend.

What is a fill (execType, https://bybit-exchange.github.io/docs/v5/enum#exectype):
``Trade``, and ``BlockTrade``, ``MovePosition`` and ``FutureSpread`` (a block trade, a position
moved between accounts, a spread leg: each changes the account's position like a trade, and a
follower that ignored them would drift from the leader); ``BustTrade`` (takeover liquidation)
and ``AdlTrade`` (auto-deleveraging) are fills flagged ``liquidation``, as is a ``Trade`` of a
liquidation order (createType ``CreateByLiq``, ``CreateByTakeOver_PassThrough``,
``CreateByAdl_PassThrough``). ``Funding`` moves money, not positions; ``Delivery`` and
``Settle`` close a position because the contract expired or was delisted, which the venue does
to every follower's position in that contract too: none of them is copied.

Inverse contracts (``BTCUSD``) trade in USD contracts: a fill's base quantity is
``execQty / execPrice`` (in BTC), rounded to 1e-12. See ``INVERSE_QTY_STEP``.

REST: v5 HMAC signing over the exact query string that is sent (``signing.BybitSigner``, the
execution client's signer too). Backfill pages ``/v5/execution/list`` (at most 7 days per
query, 100 rows a page, ``nextPageCursor``), per configured category.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from functools import cached_property
from typing import Any, ClassVar

from app.domain.model import Fill, Side
from app.ingest.frames import FrameError
from app.venues.bybit.signing import BybitSigner, query_string
from app.venues.feed import (
    BadRow,
    Item,
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

FILL_TYPES = frozenset({"Trade", "BlockTrade", "MovePosition", "FutureSpread"})
LIQUIDATION_TYPES = frozenset({"BustTrade", "AdlTrade"})
LIQUIDATION_CREATE_TYPES = frozenset(
    {"CreateByLiq", "CreateByTakeOver_PassThrough", "CreateByAdl_PassThrough"}
)
# An inverse fill converted to base units: exact to well below any venue's lot size.
INVERSE_QTY_STEP = Decimal("1e-12")
# The execution list answers at most 7 days per query and 100 rows per page.
HISTORY_WINDOW = timedelta(days=7)
HISTORY_PAGE = 100
POSITIONS_PAGE = 200
# Bounds a runaway cursor (a venue that keeps answering the same page).
MAX_PAGES = 1000


class BybitAdapter(VenueAdapter):
    kind: ClassVar[str] = "bybit"
    app_ping_interval_s: ClassVar[float | None] = 20.0

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.config.get("categories") or ("linear",)))

    async def ws_url(self) -> str:
        return str(self.config["ws_url"])

    async def on_open(self, ws: WebSocketLike) -> None:
        expires = int(time.time() * 1000) + 10_000
        await ws.send(json.dumps(self._signer.ws_auth(expires)))
        await self._ack(ws, "auth")
        topics = [f"execution.{category}" for category in self.categories]
        await ws.send(json.dumps({"op": "subscribe", "args": topics}))
        await self._ack(ws, "subscribe")

    async def _ack(self, ws: WebSocketLike, op: str) -> None:
        """Wait for the reply to ``op``; nothing else arrives before it (no topic yet)."""
        while True:
            try:
                reply = load_json(await ws.recv())
            except FrameError as exc:
                raise VenueError(f"bybit {op}: unreadable reply") from exc
            if isinstance(reply, dict) and reply.get("op") == op:
                if reply.get("success") is True:
                    return
                raise VenueError(f"bybit {op} refused: {reply.get('ret_msg')!s:.200}")

    def ping_frame(self) -> str | None:
        return '{"op":"ping"}'

    # -- messages ---------------------------------------------------------------------------

    def parse(self, raw: str | bytes, received_at: datetime) -> list[Item]:
        message = load_object(raw)
        topic = message.get("topic")
        if not isinstance(topic, str) or topic.split(".")[0] != "execution":
            # Acks, pongs ({"op": "pong"}) and any other topic: not fills.
            return []
        data = message.get("data")
        if not isinstance(data, list):
            raise FrameError("data: expected a list of executions")
        return list(self._fills(data, received_at))

    def _fills(self, rows: Iterable[object], received_at: datetime) -> Iterable[Item]:
        for row in rows:
            try:
                if not isinstance(row, dict):
                    raise FrameError("data: expected execution objects")
                fill = self._fill(row, received_at)
            except FrameError as exc:
                yield BadRow.of(row, exc)
                continue
            if fill is not None:
                yield fill

    def _fill(self, row: dict[str, Any], received_at: datetime) -> Fill | None:
        exec_type = row.get("execType")
        category = row.get("category")
        if exec_type not in FILL_TYPES and exec_type not in LIQUIDATION_TYPES:
            return None  # Funding, Settle, Delivery, UNKNOWN, or a type added later
        if category not in self.categories:
            return None  # spot or option (all-in-one topic), or a category not followed
        side = row.get("side")
        if side not in ("Buy", "Sell"):
            raise FrameError("side: expected Buy or Sell")
        qty = positive_decimal(row.get("execQty"), "execQty")
        price = positive_decimal(row.get("execPrice"), "execPrice")
        base_qty = qty
        if category == "inverse":
            # USD contracts: their base value at this fill's price.
            base_qty = positive_decimal(
                (qty / price).quantize(INVERSE_QTY_STEP, rounding=ROUND_HALF_EVEN), "execQty"
            )
        fee = decimal(row["execFee"], "execFee") if row.get("execFee") not in (None, "") else None
        fee_asset = row.get("feeCurrency")
        closed = row.get("closedSize")
        reduce_only = None
        if closed not in (None, ""):
            # The close flag Bybit gives: the whole execution closed position.
            reduce_only = decimal(closed, "closedSize") >= qty
        return Fill(
            leader_id=self.leader_id,
            fill_id=text(row.get("execId"), "execId"),
            symbol=symbol(row.get("symbol")),
            side=Side.BUY if side == "Buy" else Side.SELL,
            qty=base_qty,
            price=price,
            event_at=epoch_ms(row.get("execTime"), "execTime", received_at),
            received_at=received_at,
            fee=fee,
            fee_asset=fee_asset if isinstance(fee_asset, str) and fee_asset else None,
            reduce_only=reduce_only,
            liquidation=exec_type in LIQUIDATION_TYPES
            or row.get("createType") in LIQUIDATION_CREATE_TYPES,
        )

    # -- REST -------------------------------------------------------------------------------

    @cached_property
    def _signer(self) -> BybitSigner:
        return BybitSigner(self.credentials["api_key"], self.credentials["api_secret"])

    async def _get(self, path: str, params: Mapping[str, str]) -> Any:
        """A signed GET; the ``result`` of a ``retCode`` 0 answer, else VenueError."""
        query = query_string(params)
        headers = self._signer.headers(query, int(time.time() * 1000))
        response = await self.rest("GET", f"{path}?{query}", headers=headers)
        if response.status_code != 200:
            raise VenueError(f"bybit {path}: HTTP {response.status_code}")
        try:
            body = load_json(response.content)
        except FrameError as exc:
            raise VenueError(f"bybit {path}: unreadable answer") from exc
        if not isinstance(body, dict) or body.get("retCode") != 0:
            ret = body.get("retCode") if isinstance(body, dict) else None
            msg = body.get("retMsg") if isinstance(body, dict) else None
            raise VenueError(f"bybit {path}: retCode {ret}: {msg!s:.200}")
        result = body.get("result")
        if not isinstance(result, dict):
            raise VenueError(f"bybit {path}: no result")
        return result

    async def _pages(self, path: str, params: dict[str, str]) -> list[Any]:
        """Every row of a cursor-paged list (as the venue sent it: checked by the caller)."""
        rows: list[Any] = []
        cursor = ""
        for _ in range(MAX_PAGES):
            page = await self._get(path, {**params, "cursor": cursor} if cursor else params)
            listed = page.get("list")
            if not isinstance(listed, list):
                raise VenueError(f"bybit {path}: no list")
            rows.extend(listed)
            cursor = page.get("nextPageCursor") or ""
            if not listed or not isinstance(cursor, str) or not cursor:
                return rows
        raise VenueError(f"bybit {path}: more than {MAX_PAGES} pages")

    async def fetch_equity(self) -> Decimal:
        result = await self._get("/v5/account/wallet-balance", {"accountType": "UNIFIED"})
        accounts = result.get("list")
        if not isinstance(accounts, list) or not accounts or not isinstance(accounts[0], dict):
            raise VenueError("bybit wallet-balance: no account")
        try:
            # Margin balance (wallet + unrealised PnL) plus option value, in USD.
            return decimal(accounts[0].get("totalEquity"), "totalEquity")
        except FrameError as exc:
            raise VenueError(f"bybit wallet-balance: {exc} (a unified account is needed)") from exc

    async def positions(self) -> list[VenuePosition]:
        positions: dict[str, VenuePosition] = {}
        for category in self.categories:
            queries = (
                [{"category": category, "settleCoin": coin} for coin in self._settle_coins()]
                if category == "linear"  # linear needs a symbol or a settle coin
                else [{"category": category}]
            )
            for params in queries:
                params["limit"] = str(POSITIONS_PAGE)
                for row in await self._pages("/v5/position/list", params):
                    if isinstance(row, dict):
                        self._add_position(positions, category, row)
        return [p for p in positions.values() if p.qty != 0]

    async def positions_of(self, symbols: list[str]) -> list[VenuePosition]:
        """Each symbol asked for by name: the settle coins listed may not include its coin."""
        positions: dict[str, VenuePosition] = {}
        for name in symbols:
            for category in self.categories:
                params = {"category": category, "symbol": name}
                try:
                    rows = await self._pages("/v5/position/list", params)
                except VenueError:
                    continue  # not an instrument of this category
                for row in rows:
                    if isinstance(row, dict) and row.get("symbol") == name:
                        self._add_position(positions, category, row)
        return list(positions.values())

    def _settle_coins(self) -> list[str]:
        return list(self.config.get("settle_coins") or ("USDT", "USDC"))

    @staticmethod
    def _add_position(
        positions: dict[str, VenuePosition], category: str, row: dict[str, Any]
    ) -> None:
        side = row.get("side")
        if side not in ("Buy", "Sell"):
            return  # "" or "None": no position
        try:
            size = decimal(row.get("size"), "size")
            if size == 0:
                return
            name = symbol(row.get("symbol"))
            mark = decimal(row.get("markPrice") or "0", "markPrice")
            if mark <= 0:
                mark = decimal(row.get("avgPrice") or "0", "avgPrice")
            if category == "inverse":
                # Contracts at the (harmonic) average entry price: the base quantity the
                # opening fills added up to, as parse() converts them.
                average = positive_decimal(row.get("avgPrice"), "avgPrice")
                size = (size / average).quantize(INVERSE_QTY_STEP, rounding=ROUND_HALF_EVEN)
        except FrameError as exc:
            raise VenueError(f"bybit position/list: {exc}") from exc
        # Hedge mode has a long and a short row per symbol: the leader's net position.
        held = positions.get(name)
        qty = (held.qty if held else Decimal(0)) + (size if side == "Buy" else -size)
        positions[name] = VenuePosition(
            name, qty, mark if mark > 0 else None, exact=category != "inverse"
        )

    async def backfill(self, since: datetime, received_at: datetime) -> AsyncIterator[list[Item]]:
        """One 7-day window at a time (the list's widest), oldest first, every category."""
        end = received_at
        start = since
        while start < end:
            stop = min(start + HISTORY_WINDOW, end)
            fills: dict[str, Fill] = {}
            bad: list[Item] = []
            for category in self.categories:
                params = {
                    "category": category,
                    "startTime": str(to_epoch_ms(start)),
                    "endTime": str(to_epoch_ms(stop)),
                    "limit": str(HISTORY_PAGE),
                }
                for row in await self._pages("/v5/execution/list", params):
                    # The list has no category per row; the query's is the rows' category.
                    try:
                        if not isinstance(row, dict):
                            raise FrameError("list: expected execution objects")
                        fill = self._fill({**row, "category": category}, received_at)
                    except FrameError as exc:
                        bad.append(BadRow.of(row, exc))
                        continue
                    if fill is not None and fill.event_at >= since:
                        fills[fill.fill_id] = fill
            ordered = sorted(fills.values(), key=lambda fill: (fill.event_at, fill.fill_id))
            yield [*bad, *ordered]
            start = stop

    def describe(self) -> dict[str, Any]:
        return {**self.config, "categories": list(self.categories)}
