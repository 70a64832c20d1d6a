"""The fill pipeline: size and record in one statement, then dispatch after the commit."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

import asyncpg
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.repositories.equity import EquityRepository
from app.db.session import UnitOfWork
from app.dispatch.enqueue import Enqueuer, Prepared, Sendable
from app.dispatch.marker import DispatchMarker
from app.domain.model import EquityReading, Fill
from app.metrics import (
    DB_TIMEOUTS,
    DISPATCH_ERRORS,
    FILL_LATENCY,
    FILLS,
    LEADER_RESYNCS,
    ORDERS,
    STAGE_LATENCY,
)
from app.sizing.engine import FillOutcome, SizingEngine
from app.sizing.equity_cache import EquityCache
from app.sizing.fill_plan import PlannedOrder

log = structlog.get_logger(__name__)


class FillNotRecorded(Exception):
    """A fill that failed before its commit (Postgres unreachable, a timeout, a lock held too
    long): nothing of it is recorded, and it can be sent again."""

    def __init__(self, fill_id: str, reason: str) -> None:
        super().__init__(f"fill {fill_id} not recorded: {reason}")
        self.fill_id = fill_id
        self.reason = reason


# Errors that mean "the database was too slow or is away", not "this fill is wrong".
_TIMEOUTS = (asyncpg.QueryCanceledError, asyncpg.LockNotAvailableError, TimeoutError)
_UNAVAILABLE = (
    OSError,
    asyncpg.InterfaceError,  # the connection is gone
    asyncpg.PostgresConnectionError,  # class 08
    asyncpg.exceptions.OperatorInterventionError,  # class 57: shut down, terminated
)


class _LeaderGate:
    """One leader's turn: its fills take a slot one at a time, in arrival order."""

    __slots__ = ("lock", "waiting")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.waiting = 0


@dataclass(frozen=True, slots=True)
class FillResult:
    status: str  # "accepted" | "duplicate"
    orders: tuple[PlannedOrder, ...] = ()


class Pipeline:
    def __init__(
        self,
        sizing: SizingEngine,
        equity: EquityCache,
        enqueuer: Enqueuer,
        marker: DispatchMarker,
        sessionmaker: async_sessionmaker[AsyncSession],
        dispatch_timeout_s: float,
        fill_concurrency: int = 2,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._dispatch_timeout_s = dispatch_timeout_s
        # Fills sized at once, whichever leaders they come from; the rest wait their turn.
        # Sizing is CPU: ten fills interleaved on one event loop finish together, each about
        # ten times later than alone, and their orders reach followers that much later. A few
        # keep the database and Redis busy while the next fill is planned.
        self._slots = asyncio.Semaphore(fill_concurrency)
        # A leader's fills queue behind each other before they ask for a slot, so one leader
        # holds at most one slot: its backlog, its wide fan-out or its fill stuck on a lock
        # leaves the other slots to other leaders' fills (which queue in arrival order).
        self._gates: dict[UUID, _LeaderGate] = {}
        self.sizing = sizing
        self.equity = equity
        self._enqueuer = enqueuer
        self._marker = marker

    async def handle_fill(self, fill: Fill) -> FillResult:
        """Process one leader fill. Returns once the fill and its orders are committed and
        enqueued (or, if Redis failed, left to the outbox relay: never lost)."""
        # Every line logged while this fill is handled (sizing, commit, enqueue) carries both,
        # whichever feed it came from.
        with structlog.contextvars.bound_contextvars(
            leader_id=str(fill.leader_id), fill_id=fill.fill_id
        ):
            log.debug(
                "fill_received",
                symbol=fill.symbol,
                side=fill.side.value,
                qty=str(fill.qty),
                price=str(fill.price),
                event_at=fill.event_at.isoformat(),
            )
            return await self._handle_fill(fill)

    async def _handle_fill(self, fill: Fill) -> FillResult:
        gate = self._gates.get(fill.leader_id)
        if gate is None:
            gate = self._gates[fill.leader_id] = _LeaderGate()
        gate.waiting += 1
        try:
            async with gate.lock, self._slots:
                return await self._handle_admitted(fill)
        finally:
            gate.waiting -= 1
            if not gate.waiting:
                del self._gates[fill.leader_id]

    async def _process(self, fill: Fill) -> FillOutcome:
        """Size and record ``fill``; whatever stops it before the commit is FillNotRecorded."""
        try:
            return await self.sizing.process(fill)
        except _TIMEOUTS as exc:
            DB_TIMEOUTS.labels(where="fill").inc()
            log.warning("fill_not_recorded", error=repr(exc))
            raise FillNotRecorded(fill.fill_id, "database timeout") from exc
        except _UNAVAILABLE as exc:
            log.warning("fill_not_recorded", error=repr(exc))
            raise FillNotRecorded(fill.fill_id, "database unavailable") from exc

    async def _handle_admitted(self, fill: Fill) -> FillResult:
        started = time.perf_counter()
        outcome = await self._process(fill)
        committed = time.perf_counter()
        STAGE_LATENCY.labels(stage="committed").observe(committed - started)
        if outcome.duplicate:
            FILLS.labels(status="duplicate").inc()
            log.info("fill_duplicate")
            return FillResult("duplicate")
        FILLS.labels(status="accepted").inc()
        statuses = Counter((o.status, o.skip_reason or "") for o in outcome.orders)
        for (status, reason), count in statuses.items():
            # A row is stored "pending" until the fill is marked; every one of them reaches its
            # stream (outbox), and "dispatched" is what the API and the dashboard call it.
            shown = "dispatched" if status == "pending" else status
            ORDERS.labels(status=shown, reason=reason).inc(count)
        skipped = sum(n for (status, _), n in statuses.items() if status == "skipped")
        # One line per fill at info, whatever its fan-out; one per order only at debug.
        log.info(
            "fill_committed",
            orders=len(outcome.orders),
            skipped=skipped,
            ms=round((committed - started) * 1000, 3),
        )
        if log.is_enabled_for(logging.DEBUG):
            for order in outcome.orders:
                log.debug(
                    "order_committed",
                    order_id=order.order_id,
                    follower_id=str(order.follower_id),
                    subscription_id=str(order.subscription_id),
                    status=order.status,
                    skip_reason=order.skip_reason,
                )
        await self.dispatch(outcome.orders, outcome.fill_pks, outcome.prepared)
        done = time.perf_counter()
        STAGE_LATENCY.labels(stage="enqueued").observe(done - committed)
        FILL_LATENCY.observe(done - started)
        return FillResult("accepted", outcome.orders)

    async def copy_open_positions(
        self,
        leader_id: UUID,
        subscription_id: UUID,
        marks: Mapping[str, Decimal] | None = None,
    ) -> dict[str, str]:
        """Bring a subscription to the leader's open positions now, then dispatch; return per
        leader symbol "synced" or why not."""
        with structlog.contextvars.bound_contextvars(
            leader_id=str(leader_id), subscription_id=str(subscription_id)
        ):
            copied = await self.sizing.copy_open_positions(leader_id, subscription_id, marks)
            outcome = copied.outcome
            log.info("open_positions_copied", orders=len(outcome.orders), symbols=copied.symbols)
            await self.dispatch(outcome.orders, outcome.fill_pks)
            return copied.symbols

    async def resync_leader(
        self,
        leader_id: UUID,
        symbol: str,
        venue_qty: Decimal,
        price: Decimal,
        event_id: str,
        venue: str,
    ) -> bool:
        """Correct the leader's tracked position to the venue's and bring every follower to
        its target with ``sync`` orders; False when they already agreed."""
        with structlog.contextvars.bound_contextvars(leader_id=str(leader_id), fill_id=event_id):
            async with self._slots:
                outcome = await self.sizing.resync(leader_id, symbol, venue_qty, price, event_id)
            if outcome is None or outcome.duplicate:
                return False
            LEADER_RESYNCS.labels(venue=venue).inc()
            log.warning(
                "leader_resync",
                venue=venue,
                symbol=symbol,
                venue_qty=str(venue_qty),
                price=str(price),
                orders=len(outcome.orders),
                reason="leader_resync",
            )
            await self.dispatch(outcome.orders, outcome.fill_pks)
            return True

    async def dispatch(
        self, items: Sequence[Sendable], fill_pks: tuple[int, ...], prepared: object = None
    ) -> None:
        """Enqueue the committed orders of ``fill_pks`` (``prepared``: their commands, encoded
        by the enqueuer during the commit); the fills' "dispatched" mark is written in the
        background. On failure the fills stay unmarked, for the relay."""
        if not items:
            return
        started = time.perf_counter()
        try:
            # Bounded: a Redis that hangs (rather than refuses) must not hold up the ack of
            # fills that are already durable; the relay delivers what this gives up on.
            # asyncio.timeout runs the enqueue in this task: wait_for would start a task of
            # its own for it, a turn of the event loop before the orders leave.
            async with asyncio.timeout(self._dispatch_timeout_s):
                if isinstance(prepared, Prepared):
                    confirmed = await self._enqueuer.send(prepared)
                else:
                    confirmed = await self._enqueuer.enqueue(items)
        except Exception as exc:
            DISPATCH_ERRORS.inc()
            log.warning("dispatch_deferred_to_relay", error=repr(exc), orders=len(items))
            return
        # The caller bound leader_id and fill_id (ingest) or subscription_id (copy positions).
        log.info(
            "orders_enqueued",
            orders=len(confirmed),
            published_skipped=len(items) - len(confirmed),
            ms=round((time.perf_counter() - started) * 1000, 3),
        )
        if log.is_enabled_for(logging.DEBUG):
            sent = set(confirmed)
            for item in items:
                if item.order_id in sent:
                    log.debug(
                        "order_enqueued", order_id=item.order_id, follower_id=str(item.follower_id)
                    )
        if confirmed:  # a fill with nothing to send was marked as it committed
            self._marker.add(fill_pks)

    async def record_equity(
        self,
        uow: UnitOfWork,
        equity: Decimal,
        as_of: datetime | None,
        *,
        leader_id: UUID | None = None,
        follower_id: UUID | None = None,
    ) -> EquityReading:
        """Store an equity snapshot in ``uow``; the cache takes it once ``uow`` commits."""
        row = await EquityRepository(uow.session).add(
            equity, as_of, leader_id=leader_id, follower_id=follower_id
        )
        reading = EquityReading(row.id, row.equity, row.as_of)

        async def _observe() -> None:
            self.equity.observe(leader_id, follower_id, reading)

        uow.after_commit(_observe)
        return reading

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self._sessionmaker)
