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

Around it: the book cache (app.sizing.book_cache), one fill's planned rows
(app.sizing.fill_plan), the chunked recording (app.sizing.chunks) and what a follower's drift
check reads (app.sizing.follower_drift).
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

from app.db.repositories import fills
from app.db.small_pool import SmallPool
from app.domain.ids import FillOrderIds
from app.domain.model import Fill, Side
from app.domain.plan_model import Plan, PlanContext
from app.domain.planner import plan_within
from app.domain.positions import signed_qty
from app.executors.protocol.messages import FillMessages
from app.metrics import STAGE_LATENCY
from app.sizing.book_cache import LeaderBooks
from app.sizing.books import LeaderBook, SubscriptionBook, move_book
from app.sizing.chunks import CHUNK, FIRST_CHUNK, chunk_bounds, record_in_chunks
from app.sizing.equity_cache import EquityCache
from app.sizing.fill_plan import Batch, FillInputs, PlannedOrder, leader_positions, plan_batch
from app.sizing.follower_drift import SymbolTarget, symbol_targets
from app.sizing.vector_books import MIN_ROWS, FillVector, committed, size_fill, wide_enough


@dataclass(frozen=True, slots=True)
class FillOutcome:
    duplicate: bool
    orders: tuple[PlannedOrder, ...] = ()
    # The leader_fill rows recorded (one per fill; one per symbol for copy_open_positions):
    # marked dispatched once their orders are in Redis.
    fill_pks: tuple[int, ...] = ()
    # The orders' Redis commands, encoded while Postgres committed them (the engine's
    # ``prepare``; None: encode them when sending).
    prepared: object = None


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


class SizingEngine(LeaderBooks):
    """Plans and records leader fills and sync events from the cached books (LeaderBooks)."""

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
        vector_min_rows: int = MIN_ROWS,
    ) -> None:
        super().__init__(pool, book_idle_s)
        self.chunk = chunk
        # Size what the vector path covers with it (app.sizing.vector_books); False: the
        # planner sizes everything, as the reference it is.
        self.vector = vector
        # A narrower book is sized by the planner alone (app.sizing.vector_books.MIN_ROWS).
        self.vector_min_rows = vector_min_rows
        self.first_chunk = first_chunk
        self._fill_pool = fill_pool  # recording fills
        # Encodes a wide fan-out's orders for Redis while they are committed (the dispatch's
        # Enqueuer.prepare, set by the runtime); what it returns rides in the outcome.
        self.prepare: Callable[[list[PlannedOrder]], object] | None = None
        self._equity = equity
        self._ttl = timedelta(seconds=order_ttl_s)

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
        # In UTC, as the database gives it back: the relay rebuilds the message from it.
        valid_until = (min(fill.event_at, now) + self._ttl).astimezone(UTC)
        leader_equity = self._equity.leader(fill.leader_id)
        before, after = leader_positions(fill, leader_before)
        shared = fills.FillShared(
            kind, leader_delta, now, valid_until,
            leader_equity.equity if leader_equity else None,
            leader_equity.snapshot_id if leader_equity else None,
            before, after,
        )  # fmt: skip
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
        if (
            self.vector
            and subscriptions is book.subscriptions
            and planner is plan_within
            and wide_enough(book, self.vector_min_rows)
        ):
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
                    conn, fill, shared, batch.rows, batch.moves, batch.changes, book.seq
                )
            batches = [batch]
            prepared = None
        else:

            def plan(start: int, end: int) -> Batch:
                return self._plan(book, inputs, subscriptions[start:end], vector, start)

            bounds = chunk_bounds(len(subscriptions), self.first_chunk, self.chunk)
            recorded, batches, prepared = await record_in_chunks(
                self._fill_pool, inputs, shared, book.seq, started, bounds, plan, self.prepare
            )
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
        return FillOutcome(
            duplicate=False, orders=tuple(produced), fill_pks=(fill_pk,), prepared=prepared
        )

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
