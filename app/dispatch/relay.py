"""The outbox relay: every committed order that is not yet confirmed in Redis gets sent."""

from __future__ import annotations

import asyncio
from typing import Protocol, cast

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.repositories.orders import OrderRepository
from app.db.session import UnitOfWork
from app.dispatch.enqueue import Enqueuer, OutboxItem
from app.executors.protocol.messages import StoredOrder, encode_stored, fill_ids
from app.loops import Backoff, SupervisedTask
from app.metrics import RELAYED

log = structlog.get_logger(__name__)

# Fills per round: a fill may carry thousands of orders (sent in chunks by the enqueuer).
BATCH = 20


class PendingJobs(Protocol):
    """Durable jobs the relay also runs to completion (copy_open_positions)."""

    async def run_pending(self, older_than_s: float) -> int: ...


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
            # The message as first sent, rebuilt from the order's row and its fill's.
            items = [
                OutboxItem(
                    order.id, order.follower_id, encode_stored(cast(StoredOrder, order), fill)
                )
                for order, fill in rows
            ]
            # The fills stay locked (SKIP LOCKED) until the commit below, so no other relay
            # sends them meanwhile; if we die before committing, the Lua dedupe absorbs the
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
        for item in items:
            log.info(
                "order_relayed",
                order_id=item.order_id,
                follower_id=str(item.follower_id),
                **fill_ids(item.payload),
            )
        self.backlog = len(items)
        return len(fill_pks)
