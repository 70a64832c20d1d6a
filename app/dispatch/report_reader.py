"""Every follower's report stream, read with the consumer-group core and applied in batches.

A batch is applied in one unit of work (``ReportService.apply`` per report, a savepoint each)
and acknowledged after the commit. Entries another instance read but never acknowledged (it
died) are taken over once idle for ``claim_idle_ms``. A report that can never be applied
(malformed, unknown order, contradicting it, refused by a constraint) goes to the follower's
report dead-letter stream: one bad report never blocks the rest. One that failed only because
the database was away or busy is retried, then left unacknowledged to be read again (never
dead-lettered for that: nothing is wrong with it).
"""

from __future__ import annotations

import asyncio
import socket
from uuid import UUID

import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.consumer_group.core import SLICE, Entry, GroupConfig, GroupCore
from app.consumer_group.shared_read import ReadShard, SharedReads
from app.db.errors import is_transient
from app.db.repositories.accounts import FollowerRepository
from app.db.session import UnitOfWork
from app.dispatch.keys import report_dead_letter_stream, report_stream
from app.dispatch.reports import ReportService, UnknownOrder
from app.domain.lifecycle import ReportError
from app.executors.protocol.reports import parse_report
from app.loops import Backoff, SupervisedTask
from app.metrics import REPORT_RETRIES, REPORTS
from app.redisconn import AnyRedis

log = structlog.get_logger(__name__)

GROUP = "copytrade"
# Backoff between attempts at a batch of reports while the database is away or busy.
RETRY_INITIAL_S = 0.2
RETRY_MAX_S = 5.0
# Followers read per query when every follower's stream is looked for (start and sweeps).
REFRESH_PAGE = 5000
# Every this often, a refresh reads every follower's id whatever their count.
FULL_REFRESH_S = 300.0
# Consumer groups created per round trip when streams are first tracked: one round trip per
# follower held a start with tens of thousands of followers busy for seconds.
TRACK_SLICE = SLICE
# Streams named by one blocking read (each shard has its own loop and connection).
READ_SHARD = 1000


class ReportReader:
    """Reads every follower's report stream with a consumer group; XACK after the commit.

    Tracking (followers made elsewhere) and reclaiming run in a loop of their own; the reads
    are the core's shared reads (``app.consumer_group.shared_read``).
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis: AnyRedis,
        service: ReportService,
        block_ms: int,
        claim_idle_ms: int,
        refresh_s: float,
        attempts: int = 5,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._redis = redis
        self._service = service
        self._attempts = attempts
        self._claim_idle_ms = claim_idle_ms
        self._refresh_s = refresh_s
        config = GroupConfig(
            GROUP,
            f"{socket.gethostname()}-{id(self):x}",
            block_ms=block_ms,
            claim_idle_ms=claim_idle_ms,
            max_deliveries=None,
        )
        self._core = GroupCore(
            redis, config, lambda stream: report_dead_letter_stream(self._streams[stream])
        )
        self._reads = SharedReads(self._core, "report_reader", self._apply_batch, READ_SHARD)
        self._streams: dict[str, UUID] = {}
        # Followers counted when their ids were last read: a refresh reads them again only
        # when the count has moved.
        self._counted = -1
        self._loop = SupervisedTask("report_reader", self._run, Backoff(0.2, 10.0))

    @property
    def _shards(self) -> list[ReadShard]:
        return self._reads.shards

    async def start(self) -> None:
        self._loop.start()
        self._reads.start()

    async def stop(self) -> None:
        await self._loop.stop()
        await self._reads.stop()

    async def track(self, follower_id: UUID) -> None:
        """Start reading a follower's report stream now (other instances find it on refresh)."""
        await self.track_many([follower_id])

    async def track_many(self, follower_ids: list[UUID]) -> None:
        """Start reading the report streams of ``follower_ids`` not read yet, their groups
        made first."""
        new = {
            key: follower_id
            for follower_id in follower_ids
            if (key := report_stream(follower_id)) not in self._streams
        }
        if not new:
            return
        await self._core.create_groups(list(new))
        self._streams.update(new)
        await self._reads.add(list(new))

    async def refresh(self, full: bool = False) -> None:
        """Track the followers made elsewhere since the last look (``full``: look anyway).

        Their count tells whether there are any: the service never deletes a follower. Ids
        are read only when the count moved, a page at a time, yielding between. A sweep now
        and then (``full``) covers a follower deleted by hand and another made.
        """
        found: list[UUID] = []
        async with self._sessionmaker() as session:
            repo = FollowerRepository(session)
            count = await repo.count()
            if count == self._counted and not full:
                return
            after: UUID | None = None
            while page := await repo.id_page(after, REFRESH_PAGE):
                found += page
                after = page[-1]
                await asyncio.sleep(0)
        await self.track_many(found)
        # Counted before the pages were read: one made meanwhile only brings one more look.
        # Set once they are tracked: a failure leaves the next refresh to read them again.
        self._counted = count

    async def _run(self, backoff: Backoff) -> None:
        """Track followers made elsewhere and take over abandoned reports, each when due."""
        self._counted = -1
        await self.refresh(full=True)
        loop = asyncio.get_running_loop()
        refreshed = claimed = swept = loop.time()
        await self.claim_idle()
        claim_every_s = self._claim_idle_ms / 2000
        while True:
            due = min(refreshed + self._refresh_s, claimed + claim_every_s)
            await asyncio.sleep(max(0.0, due - loop.time()))
            now = loop.time()
            if now - refreshed >= self._refresh_s:
                full = now - swept > FULL_REFRESH_S
                await self.refresh(full)
                refreshed = now
                swept = now if full else swept
            if now - claimed >= claim_every_s:
                await self.claim_idle()
                claimed = now
            backoff.reset()

    async def claim_idle(self) -> int:
        """Take over and apply reports left unacknowledged by a consumer that went away."""
        claimed = await self._core.claim(list(self._streams))
        if claimed:
            await self._apply_batch(claimed)
        return len(claimed)

    async def read_once(self, shard: ReadShard, block_ms: int | None = None) -> int:
        """Read and apply one batch of new reports from ``shard``'s streams; return how many."""
        return await self._reads.read_once(shard, block_ms)

    async def _apply_batch(self, batch: list[Entry]) -> None:
        """Apply ``batch`` and acknowledge it, retrying while the database is away or busy.

        After ``attempts`` tries the error goes up and the reports stay unacknowledged: they
        are read again (claimed once idle) rather than dead-lettered, since they are fine."""
        backoff = Backoff(RETRY_INITIAL_S, RETRY_MAX_S)
        for attempt in range(1, self._attempts + 1):
            try:
                await self._apply_batch_once(batch)
                return
            except Exception as exc:
                if not is_transient(exc) or attempt == self._attempts:
                    raise
                REPORT_RETRIES.inc()
                delay = backoff.next_delay()
                log.warning(
                    "reports_retried", attempt=attempt, error=repr(exc), retry_in_s=round(delay, 3)
                )
                await asyncio.sleep(delay)

    async def _apply_batch_once(self, batch: list[Entry]) -> None:
        acks: dict[str, list[bytes]] = {}
        dead: list[tuple[str, bytes, dict[bytes, bytes]]] = []
        async with UnitOfWork(self._sessionmaker) as uow:
            for entry in batch:
                follower_id = self._streams[entry.stream]
                raw = entry.fields.get(b"report")
                try:
                    if raw is None:
                        raise ReportError("report: missing field")
                    order_id, report = parse_report(raw)
                    # A savepoint per report: whatever the database refuses in one report
                    # (a constraint, a bad byte) is rolled back alone.
                    async with uow.session.begin_nested():
                        await self._service.apply(uow, follower_id, order_id, report)
                    REPORTS.labels(outcome="applied").inc()
                    acks.setdefault(entry.stream, []).append(entry.entry_id)
                except (ReportError, UnknownOrder, SQLAlchemyError) as exc:
                    if is_transient(exc):
                        raise  # the whole batch again: nothing is wrong with the report
                    REPORTS.labels(outcome="dead_lettered").inc()
                    log.warning(
                        "report_rejected", follower_id=str(follower_id), error=str(exc)[:300]
                    )
                    dead.append((entry.stream, entry.entry_id, {b"report": raw or b""}))
            await uow.commit()
        await self._core.settle(acks, dead)
