"""The sizing engine: one leader fill in, every subscription's orders planned and recorded.

Per leader, fills are applied one at a time under the book's lock: plan every subscription
from the cached book (no query per follower), record the fill and everything it caused in one
statement (a fan-out wider than ``FIRST_CHUNK``: in chunks of one transaction, each written
while the next is planned), then move the cached positions. Anything that fails leaves the book
stale, so the next fill reloads it from the database.

The statement records only if the leader's book sequence is still the one the book was loaded
at: another instance (a push socket that moved, a lease that came back) or an executor
correction may have moved the positions since. Then nothing is written, and the fill is planned
again from a reloaded book.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple
from uuid import UUID

import asyncpg
import structlog

from app.db.repositories import fills
from app.db.repositories.instruments import load_listings
from app.db.small_pool import SmallPool
from app.dispatch.messages import FillMessages
from app.domain.ids import FillOrderIds
from app.domain.model import Fill, Side
from app.domain.plan_model import InstrumentRules, Plan, PlanContext
from app.domain.planner import plan_within
from app.domain.positions import signed_qty
from app.metrics import BOOKS_EVICTED, STAGE_LATENCY
from app.sizing.books import (
    LeaderBook,
    SubscriptionBook,
    default_rules,
    move_book,
    rules_from_row,
    settings_from_row,
)
from app.sizing.chunks import CHUNK, FIRST_CHUNK, chunk_bounds, record_in_chunks
from app.sizing.equity_cache import EquityCache
from app.sizing.fill_plan import Batch, FillInputs, PlannedOrder, plan_batch
from app.sizing.follower_drift import SymbolTarget, symbol_targets
from app.sizing.vector_books import FillVector, committed, size_fill
from app.sizing.venue_rules import VenueRules, follower_venue, leader_venue

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class FillOutcome:
    duplicate: bool
    orders: tuple[PlannedOrder, ...] = ()
    # The leader_fill rows recorded (one per fill; one per symbol for copy_open_positions):
    # marked dispatched once their orders are in Redis.
    fill_pks: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class CopyOutcome:
    """copy_open_positions' orders, and per leader symbol "synced" or why it was not."""

    outcome: FillOutcome
    symbols: dict[str, str]


@dataclass(slots=True)
class _Copy:
    """One copy_open_positions run: what it was asked, and what it did so far."""

    subscription_id: UUID
    now: datetime
    marks: Mapping[str, Decimal]
    symbols: dict[str, str] = field(default_factory=dict)
    orders: list[PlannedOrder] = field(default_factory=list)
    fill_pks: list[int] = field(default_factory=list)


def _copy_status(outcome: FillOutcome) -> str:
    if outcome.duplicate:
        return "already_synced"
    if any(not order.skipped for order in outcome.orders):
        return "synced"
    reasons = {order.skip_reason for order in outcome.orders if order.skip_reason}
    return next(iter(sorted(reasons)), "nothing_to_send")


class _Event(NamedTuple):
    """One event to plan and record from a leader's book: the fill, the subscriptions it
    plans, the leader's position before it and how much it moves it, and the planner."""

    fill: Fill
    subscriptions: list[SubscriptionBook]
    leader_before: Decimal
    leader_delta: Decimal
    kind: str = "sync"
    planner: Callable[[PlanContext], Plan] = plan_within


class SizingEngine:
    def __init__(
        self,
        pool: asyncpg.Pool,
        fill_pool: SmallPool,
        equity: EquityCache,
        order_ttl_s: float,
        chunk: int = CHUNK,
        first_chunk: int = FIRST_CHUNK,
        book_idle_s: float = 3600.0,
        vector: bool = True,
    ) -> None:
        self.chunk = chunk
        # Size what the vector path covers with it (app.sizing.vector_books); False: the
        # planner sizes everything, as the reference it is.
        self.vector = vector
        self.first_chunk = first_chunk
        # A book unused this long is dropped (the next fill reads it again): leaders that
        # stopped trading must not hold their followers' books for the process's lifetime.
        self.book_idle_s = book_idle_s
        self._used: dict[UUID, float] = {}
        self._swept = time.monotonic()
        self._pool = pool  # loading books
        self._fill_pool = fill_pool  # recording fills
        self._equity = equity
        self._ttl = timedelta(seconds=order_ttl_s)
        self._books: dict[UUID, LeaderBook] = {}
        self._rules: dict[str, InstrumentRules] | None = None
        self._venue_rules = VenueRules(())

    # -- cache control -------------------------------------------------------------------

    def invalidate(self, leader_id: UUID) -> None:
        book = self._books.get(leader_id)
        if book is not None:
            book.stale = True

    def invalidate_instruments(self) -> None:
        # Books remember each subscription's placements on its venue: rebuild them too.
        self.invalidate_all()

    def invalidate_all(self) -> None:
        for book in self._books.values():
            book.stale = True
        self._rules = None

    async def _load(self, leader_id: UUID, into: LeaderBook | None) -> LeaderBook:
        async with self._pool.acquire() as conn:
            rows = await fills.load_book(conn, leader_id)
            venue = await leader_venue(conn, leader_id)
            if self._rules is None:
                self._rules = {
                    row["symbol"]: rules_from_row(row) for row in await fills.load_instruments(conn)
                }
                self._venue_rules = VenueRules(await load_listings(conn))
        books = {
            row["id"]: SubscriptionBook(
                row["id"],
                row["follower_id"],
                settings_from_row(row["multiplier"], row["status"], row["sizing"]),
            )
            for row in rows.subscriptions
        }
        for row in rows.subscriptions:
            books[row["id"]].venue, books[row["id"]].quote = follower_venue(
                row["sizing"], row["account_venue"], self._venue_rules.catalogue.venues
            )
        for row in rows.subscription_positions:
            if row["subscription_id"] in books:
                books[row["subscription_id"]].positions[row["symbol"]] = row["qty"]
        positions = {row["symbol"]: row["qty"] for row in rows.leader_positions}
        prices = {row["symbol"]: row["price"] for row in rows.last_prices}
        if into is None:
            return LeaderBook(
                leader_id, list(books.values()), positions, prices, rows.seq, venue=venue
            )
        into.subscriptions = list(books.values())
        into.columns = {}
        into.positions = positions
        into.last_price = prices
        into.seq = rows.seq
        into.venue = venue
        into.stale = False
        return into

    @property
    def books_cached(self) -> int:
        return len(self._books)

    def evict_idle(self, now: float) -> int:
        """Drop the books unused for ``book_idle_s`` and not in use now; return how many."""
        self._swept = now
        idle = [
            leader_id
            for leader_id, used in self._used.items()
            if now - used >= self.book_idle_s and not self._books[leader_id].lock.locked()
        ]
        for leader_id in idle:
            del self._books[leader_id], self._used[leader_id]
        if idle:
            BOOKS_EVICTED.inc(len(idle))
            log.info("books_evicted", count=len(idle), kept=len(self._books))
        return len(idle)

    def _moved(self, book: LeaderBook, fill: Fill) -> None:
        """The book moved elsewhere since it was loaded: reload it before planning again."""
        book.stale = True
        log.info("book_moved", leader_id=str(book.leader_id), fill_id=fill.fill_id)

    async def _book(self, leader_id: UUID) -> LeaderBook:
        now = time.monotonic()
        if now - self._swept >= self.book_idle_s / 4:
            self.evict_idle(now)
        self._used[leader_id] = now
        book = self._books.get(leader_id)
        if book is None:
            loaded = await self._load(leader_id, None)
            # Two first fills may load at once: both must end up with the same book (and lock).
            book = self._books.setdefault(leader_id, loaded)
            self._used[leader_id] = time.monotonic()
        return book

    def _placement(
        self, book: LeaderBook, sub: SubscriptionBook, leader_symbol: str
    ) -> tuple[str, InstrumentRules] | None:
        """The follower's symbol and rules for ``leader_symbol``; None when the follower's
        venue does not list it. A follower on a known venue is placed there
        (app.sizing.venue_rules); any other trades the leader's symbol or its rename."""
        if sub.venue is None:
            symbol = sub.settings.symbol_map.get(leader_symbol, leader_symbol)
            return symbol, self._instrument(symbol)
        assert self._rules is not None
        return self._venue_rules.place(sub, leader_symbol, book.venue, self._rules)

    def _instrument(self, symbol: str) -> InstrumentRules:
        assert self._rules is not None
        rules = self._rules.get(symbol)
        if rules is None:
            rules = self._rules[symbol] = default_rules(symbol)
        return rules

    # -- events: a fill, and the sync events that bring positions to their targets -------

    async def process(self, fill: Fill) -> FillOutcome:
        """Plan, record and commit one fill. Returns once it is durable (or a duplicate)."""

        def trade(book: LeaderBook) -> _Event:
            before = book.positions.get(fill.symbol, Decimal(0))
            delta = signed_qty(fill.side, fill.qty)
            return _Event(fill, book.subscriptions, before, delta, "trade")

        outcome = await self._record(fill.leader_id, trade)
        assert outcome is not None  # a fill always makes its event
        return outcome

    async def copy_open_positions(
        self,
        leader_id: UUID,
        subscription_id: UUID,
        marks: Mapping[str, Decimal] | None = None,
    ) -> CopyOutcome:
        """Bring one subscription to its target in every symbol the leader holds now.

        Each open leader position is planned as if the leader had just opened it from flat,
        for this subscription only, and recorded as a ``sync`` event (not a leader trade: the
        leader's own positions do not move). Its price is the leader's last fill's, else the
        venue's mark (``marks``); without either the symbol is skipped as ``no_price``. The
        outcome says, per symbol, ``synced`` or why not.
        """
        book = await self._book(leader_id)
        async with book.lock:
            copy = _Copy(subscription_id, datetime.now(UTC), marks or {})
            while await self._copy_symbols(book, copy):
                pass
            outcome = FillOutcome(
                duplicate=False, orders=tuple(copy.orders), fill_pks=tuple(copy.fill_pks)
            )
            return CopyOutcome(outcome, copy.symbols)

    async def _copy_symbols(self, book: LeaderBook, copy: _Copy) -> bool:
        """copy_open_positions over the symbols not done yet, from the book as it is now.
        Return True when the book moved elsewhere first: reload it and go on."""
        await self._fresh(book)
        subs = [s for s in book.subscriptions if s.id == copy.subscription_id]
        for symbol, position in sorted(book.positions.items()):
            if not position or symbol in copy.symbols:
                continue
            price = book.last_price.get(symbol) or copy.marks.get(symbol)
            if not subs or price is None:
                copy.symbols[symbol] = "subscription_not_live" if not subs else "no_price"
                continue
            event = Fill(
                leader_id=book.leader_id,
                fill_id=f"sync:{copy.subscription_id}:{symbol}",
                symbol=symbol,
                side=Side.BUY if position > 0 else Side.SELL,
                qty=abs(position),
                price=price,
                event_at=copy.now,
                received_at=copy.now,
            )
            outcome = await self._attempt(book, _Event(event, subs, Decimal(0), Decimal(0)))
            if outcome is None:
                return True
            copy.symbols[symbol] = _copy_status(outcome)
            copy.orders += outcome.orders
            copy.fill_pks += outcome.fill_pks
        return False

    def last_price(self, leader_id: UUID, symbol: str) -> Decimal | None:
        """The leader's last fill price in ``symbol``, if its book is loaded."""
        book = self._books.get(leader_id)
        return book.last_price.get(symbol) if book is not None else None

    async def leader_positions(self, leader_id: UUID) -> dict[str, Decimal]:
        """The leader's tracked positions (the cached book, loaded if need be)."""
        book = await self._book(leader_id)
        async with book.lock:
            await self._fresh(book)
            return {symbol: qty for symbol, qty in book.positions.items() if qty}

    async def resync(
        self, leader_id: UUID, symbol: str, venue_qty: Decimal, price: Decimal, event_id: str
    ) -> FillOutcome | None:
        """Set the leader's tracked position in ``symbol`` to the venue's, if they differ.

        The difference is recorded as a ``sync`` event that moves the leader's position and
        plans every subscription as a trade of that size would (so each follower is brought to
        its target); ``event_id`` makes it happen once. None when they already agree.
        """

        def difference(book: LeaderBook) -> _Event | None:
            before = book.positions.get(symbol, Decimal(0))
            delta = venue_qty - before
            if not delta:
                return None
            now = datetime.now(UTC)
            event = Fill(
                leader_id=leader_id,
                fill_id=event_id,
                symbol=symbol,
                side=Side.BUY if delta > 0 else Side.SELL,
                qty=abs(delta),
                price=price,
                event_at=now,
                received_at=now,
            )
            return _Event(event, book.subscriptions, before, delta)

        return await self._record(leader_id, difference)

    # -- a follower's drift (app.venues.drift) ----------------------------------------------

    async def symbol_targets(self, leader_id: UUID, subscription_id: UUID) -> list[SymbolTarget]:
        """Each follower symbol the subscription is tracked in or its leader trades, with its
        target at the current equities."""
        book = await self._book(leader_id)
        async with book.lock:
            await self._fresh(book)
            sub = next((s for s in book.subscriptions if s.id == subscription_id), None)
            if sub is None:
                return []
            return symbol_targets(
                book,
                sub,
                self._placement,
                self._equity.leader(leader_id),
                self._equity.follower(sub.follower_id),
            )

    async def resync_follower(
        self,
        leader_id: UUID,
        subscription_id: UUID,
        leader_symbol: str,
        event: tuple[str, Side, Decimal],
        planner: Callable[[PlanContext], Plan],
    ) -> FillOutcome | None:
        """Bring one subscription's tracked position in ``leader_symbol``'s follower symbol to
        its target, planned by ``planner``; recorded as a ``sync`` event ``event`` (id, side,
        qty) that leaves the leader's position alone. None without a leader price."""

        def correction(book: LeaderBook) -> _Event | None:
            subs = [s for s in book.subscriptions if s.id == subscription_id]
            price = book.last_price.get(leader_symbol)
            if not subs or price is None:
                return None
            now = datetime.now(UTC)
            fill = Fill(leader_id, event[0], leader_symbol, event[1], event[2], price, now, now)
            before = book.positions.get(leader_symbol, Decimal(0))
            return _Event(fill, subs, before, Decimal(0), "sync", planner)

        return await self._record(leader_id, correction)

    # -- planning and recording one event ---------------------------------------------------

    async def _fresh(self, book: LeaderBook) -> None:
        """Reload ``book`` if it is stale (or the instrument rules were dropped)."""
        if book.stale or self._rules is None:
            await self._load(book.leader_id, book)

    async def _record(
        self, leader_id: UUID, make: Callable[[LeaderBook], _Event | None]
    ) -> FillOutcome | None:
        """Under the leader's book lock, plan and record the event ``make`` makes of the book;
        while the book had moved elsewhere first, make and plan it again from the reloaded
        book. None when ``make`` makes no event."""
        book = await self._book(leader_id)
        async with book.lock:
            while True:
                await self._fresh(book)
                event = make(book)
                if event is None:
                    return None
                outcome = await self._attempt(book, event)
                if outcome is not None:
                    return outcome

    async def _attempt(self, book: LeaderBook, event: _Event) -> FillOutcome | None:
        """Plan and record ``event`` from the book once; None when the book had moved
        elsewhere (nothing recorded, the book marked stale)."""
        try:
            outcome = await self._process(
                book, event.fill, event.subscriptions, event.leader_before, event.leader_delta,
                event.kind, event.planner,
            )  # fmt: skip
        except BaseException:
            # The write may or may not have committed: trust only the database now.
            book.stale = True
            raise
        if outcome is None:
            self._moved(book, event.fill)
        return outcome

    async def _process(
        self,
        book: LeaderBook,
        fill: Fill,
        subscriptions: list[SubscriptionBook],
        leader_before: Decimal,
        leader_delta: Decimal,
        kind: str = "trade",
        planner: Callable[[PlanContext], Plan] = plan_within,
    ) -> FillOutcome | None:
        """Plan and record one fill from the book; None when the book had moved elsewhere
        (nothing recorded)."""
        started = time.perf_counter()
        now = datetime.now(UTC)
        valid_until = min(fill.event_at, now) + self._ttl
        leader_equity = self._equity.leader(fill.leader_id)
        inputs = FillInputs(
            fill,
            leader_before,
            leader_equity,
            now,
            FillMessages(fill, now, valid_until, leader_equity),
            FillOrderIds(fill.leader_id, fill.fill_id),
            planner,
        )
        vector = None
        if self.vector and subscriptions is book.subscriptions and planner is plan_within:
            # Every subscription of the book: its columns hold them (a subset is planned). The
            # kernel is the reference planner's twin, so another planner (a resync's) plans alone.
            vector = size_fill(
                book, fill, leader_before, leader_equity, now, self._equity,
                lambda sub, symbol: self._placement(book, sub, symbol),
            )  # fmt: skip
        if len(subscriptions) <= min(self.first_chunk, self.chunk):
            batch = self._plan(book, inputs, subscriptions, vector)
            STAGE_LATENCY.labels(stage="sized").observe(time.perf_counter() - started)
            async with self._fill_pool.connection() as conn:
                recorded = await fills.record_fill(
                    conn, fill, kind, now, valid_until, batch.rows, leader_delta, batch.moves,
                    batch.changes, book.seq,
                )  # fmt: skip
            batches = [batch]
        else:

            def plan(start: int, end: int) -> Batch:
                return self._plan(book, inputs, subscriptions[start:end], vector, start)

            bounds = chunk_bounds(len(subscriptions), self.first_chunk, self.chunk)
            recorded, batches = await record_in_chunks(
                self._fill_pool, inputs, kind, valid_until, leader_delta, book.seq, started,
                bounds, plan,
            )  # fmt: skip
        if recorded.seq is None:
            return None
        book.seq = recorded.seq
        fill_pk = recorded.fill_pk
        if fill_pk is None:
            return FillOutcome(duplicate=True)

        # Committed: move the cache the way the statement moved the database.
        applied = [moved for b in batches for moved in b.applied]
        move_book(book, fill, leader_delta, applied)
        committed(book, vector, applied)
        produced: list[PlannedOrder] = [order for batch in batches for order in batch.produced]
        return FillOutcome(duplicate=False, orders=tuple(produced), fill_pks=(fill_pk,))

    def _plan(
        self,
        book: LeaderBook,
        inputs: FillInputs,
        subscriptions: list[SubscriptionBook],
        vector: FillVector | None = None,
        offset: int = 0,
    ) -> Batch:
        """Plan ``subscriptions`` for one fill (app.sizing.fill_plan.plan_batch)."""
        return plan_batch(
            book,
            inputs,
            subscriptions,
            self._placement,
            self._instrument,
            self._equity,
            vector,
            offset,
        )
