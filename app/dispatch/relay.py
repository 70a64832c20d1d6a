"""The outbox relay: every committed order that is not yet confirmed in Redis gets sent."""

from __future__ import annotations

import asyncio
from typing import Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.repositories.orders import OrderRepository, OutboxRow
from app.db.session import UnitOfWork
from app.dispatch.enqueue import Enqueuer, OutboxItem
from app.domain.decimals import fmt
from app.domain.ids import fill_key
from app.executors.protocol.messages import lean_order, wire_time
from app.loops import Backoff, SupervisedTask
from app.metrics import RELAYED

log = structlog.get_logger(__name__)

# Fills per round: a fill may carry thousands of orders (sent in chunks by the enqueuer).
BATCH = 20


class PendingJobs(Protocol):
    """Durable jobs the relay also runs to completion (copy_open_positions)."""

    async def run_pending(self, older_than_s: float) -> int: ...


def outbox_item(row: OutboxRow) -> OutboxItem:
    """An order row as the enqueue sends it: the order message rebuilt from the row's columns
    through the sizing engine's encoder (the same bytes as the first send), and its fill
    named as the sizing engine names it (the same sent markers)."""
    follower = str(row.follower_id)
    payload = lean_order(
        order_id=row.order_id,
        follower_id=follower,
        leader_id=str(row.leader_id),
        subscription_id=str(row.subscription_id),
        leader_fill_id=row.fill_id,
        symbol=row.symbol,
        side=row.side,
        qty=fmt(row.qty),
        order_type=row.type,
        reduce_only=row.reduce_only,
        limit_price=None if row.limit_price is None else fmt(row.limit_price),
        time_in_force=row.time_in_force,
        valid_until=wire_time(row.valid_until),
        leader_price=fmt(row.leader_price),
    )
    return OutboxItem(row.order_id, row.follower_id, payload, fill_key(row.leader_id, row.fill_id))


class OutboxRelay:
    """Re-dispatch the orders of unmarked fills at start-up and every ``interval_s``.

    Fills younger than ``min_age_s`` are left to the request that created them, which sends
    their orders right after its commit; the relay is the safety net for crashes and Redis
    outages.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        enqueuer: Enqueuer,
        interval_s: float,
        min_age_s: float,
        timeout_s: float = 5.0,
        jobs: PendingJobs | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._timeout_s = timeout_s
        self._enqueuer = enqueuer
        self._interval_s = interval_s
        self._min_age_s = min_age_s
        self._jobs = jobs
        self._loop = SupervisedTask("outbox_relay", self._run, Backoff(0.2, 10.0))
        self.backlog = 0

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _run(self, backoff: Backoff) -> None:
        min_age = 0.0  # at start-up nothing in flight belongs to a live request: send it all
        while True:
            while await self.relay_once(min_age) == BATCH:
                pass
            if self._jobs is not None:
                await self._jobs.run_pending(min_age)
            backoff.reset()
            min_age = self._min_age_s
            await asyncio.sleep(self._interval_s)

    async def relay_once(self, min_age_s: float) -> int:
        """Send the orders of one batch of unmarked fills; return how many fills."""
        async with UnitOfWork(self._sessionmaker) as uow:
            repo = OrderRepository(uow.session)
            fill_pks, rows = await repo.undispatched(min_age_s, BATCH)
            if not fill_pks:
                self.backlog = 0
                return 0
            items = [outbox_item(row) for row in rows]
            # The fills stay locked (SKIP LOCKED) until the commit below, so no other relay
            # sends them meanwhile; if we die before committing, the sent markers absorb the
            # resend. A Redis that hangs must not keep them locked: past the timeout the
            # batch rolls back (the locks go with it) and the loop tries again later.
            try:
                confirmed = await asyncio.wait_for(
                    self._enqueuer.enqueue(items), timeout=self._timeout_s
                )
            except TimeoutError:
                log.warning("outbox_relay_timed_out", fills=len(fill_pks), orders=len(items))
                raise
            await repo.mark_dispatched(fill_pks)
            await uow.commit()
        RELAYED.inc(len(confirmed))
        log.info("outbox_relayed", fills=len(fill_pks), count=len(confirmed))
        # The relay is the exception path (a crash, a Redis outage): worth a line per order.
        for row in rows:
            log.info(
                "order_relayed",
                order_id=row.order_id,
                follower_id=str(row.follower_id),
                leader_id=str(row.leader_id),
                fill_id=row.fill_id,
            )
        self.backlog = len(items)
        return len(fill_pks)
