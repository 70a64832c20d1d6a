"""Executor reports: parse, apply to orders and positions, publish each status change.

Reports arrive on ``copytrade:reports:{<follower_id>}`` (field ``report``, JSON) or over REST.
Both paths go through ``ReportService.apply`` in one unit of work; the feed is told after commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Annotated, Literal
from uuid import UUID

import msgspec
import structlog
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.errors import is_transient
from app.db.repositories.accounts import FollowerRepository
from app.db.repositories.orders import LifecycleRepository
from app.db.repositories.positions import PositionRepository
from app.db.session import UnitOfWork
from app.dispatch.keys import feed_channel, report_dead_letter_stream, report_stream
from app.domain.decimals import MAX_DIGITS, fmt, is_bounded
from app.domain.lifecycle import (
    OrderState,
    Report,
    ReportError,
    ReportStatus,
    apply_report,
    tracking_correction,
)
from app.domain.model import Side
from app.executors.protocol.messages import fill_ids
from app.loops import Backoff, SupervisedTask
from app.metrics import REPORT_RETRIES, REPORTS
from app.redisconn import AnyRedis, bulk, by_slot, command, raw_connection, read_replies

log = structlog.get_logger(__name__)

GROUP = "copytrade"
# Printable text only: control characters (NUL above all) have no business in a reason.
# (Written for pydantic's Rust engine; msgspec uses Python's re, where only \Z is a hard end.)
REASON_PATTERN = r"^[^\x00-\x1f\x7f]*$"
# Backoff between attempts at a batch of reports while the database is away or busy.
RETRY_INITIAL_S = 0.2
RETRY_MAX_S = 5.0
# Streams per call when reclaiming a dead consumer's reports.
CLAIM_SLICE = 1000
# Followers read per query when every follower's stream is looked for (start and sweeps).
REFRESH_PAGE = 5000
# Every this often, a refresh reads every follower's id whatever their count.
FULL_REFRESH_S = 300.0
# On a cluster, reads do not block (one per slot group): the longest pause between two polls.
CLUSTER_POLL_MAX_S = 1.0
_CLIENT_ID = command(b"CLIENT", b"ID")
# The shortest block of a read (Redis takes 0 as "forever").
MIN_BLOCK_MS = 10
# Consumer groups created per round trip when streams are first tracked.
TRACK_SLICE = 1000
# Streams named by one blocking read (each shard has its own loop and connection): about
# 1.5 ms of Redis per read, against 60 ms for one read naming 42,000.
READ_SHARD = 1000
# KEYS: report streams; ARGV[1]: the group. Creates each stream's group unless it exists.
# Existing groups are the usual case after a restart: answered here, not as an error reply
# per stream that the client turns into an exception each (twice the time of the script).
_TRACK_LUA = """
for _, key in ipairs(KEYS) do
  local reply = redis.pcall('XGROUP', 'CREATE', key, ARGV[1], '0', 'MKSTREAM')
  if type(reply) == 'table' and reply.err and not string.find(reply.err, 'BUSYGROUP', 1, true) then
    return redis.error_reply(key .. ': ' .. reply.err)
  end
end
return #KEYS
"""
# KEYS: report streams; ARGV: group, consumer, min idle ms, count. Returns [stream, entries,
# ...] for the streams where entries were taken over: XPENDING first, as nearly all have none.
_CLAIM_LUA = """
local claimed = {}
for _, key in ipairs(KEYS) do
  if redis.call('XPENDING', key, ARGV[1])[1] > 0 then
    local result = redis.call('XAUTOCLAIM', key, ARGV[1], ARGV[2], ARGV[3], '0-0', 'COUNT', ARGV[4])
    if #result[2] > 0 then
      claimed[#claimed + 1] = key
      claimed[#claimed + 1] = result[2]
    end
  end
end
return claimed
"""
# What redis-py returns for XREADGROUP without decode_responses: [(key, [(id, fields)])].
StreamBatch = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] | None
_encoder = msgspec.json.Encoder()


class ReportFrame(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The report an executor sends (JSON in the ``report`` field of a stream entry)."""

    order_id: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    status: Literal["accepted", "partially_filled", "filled", "rejected", "expired"]
    filled_qty: Decimal = Decimal(0)
    avg_price: Decimal | None = None
    reason: (
        Annotated[str, msgspec.Meta(max_length=200, pattern=REASON_PATTERN[:-1] + r"\Z")] | None
    ) = None


_decoder = msgspec.json.Decoder(ReportFrame)


def parse_report(raw: str | bytes) -> tuple[str, Report]:
    """Decode one stream report. Raises ReportError naming the field."""
    try:
        frame = _decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ReportError(str(exc)) from exc
    for name, value in (("filled_qty", frame.filled_qty), ("avg_price", frame.avg_price)):
        if value is not None and not is_bounded(value):
            raise ReportError(f"{name}: must be a finite decimal of at most {MAX_DIGITS} digits")
    return frame.order_id, Report(
        ReportStatus(frame.status), frame.filled_qty, frame.avg_price, frame.reason
    )


@dataclass(frozen=True, slots=True)
class Applied:
    order_id: str
    status: str
    changed: bool


class UnknownOrder(LookupError):
    pass


def status_message(
    order_id: str, status: str, filled_qty: Decimal, avg_price: Decimal | None, reason: str | None
) -> str:
    return _encoder.encode(
        {
            "type": "order_status",
            "order_id": order_id,
            "status": status,
            "filled_qty": fmt(filled_qty),
            "avg_price": fmt(avg_price) if avg_price is not None else None,
            "reason": reason,
            "at": datetime.now(UTC).isoformat(),
        }
    ).decode()


class ReportService:
    def __init__(self, redis: AnyRedis, on_correction: Callable[[UUID], None]) -> None:
        self._redis = redis
        # Told the leader whose tracked positions a report corrected, right after the commit
        # (other instances learn it from the NOTIFY sent in the same transaction).
        self._on_correction = on_correction

    async def apply(
        self, uow: UnitOfWork, follower_id: UUID, order_id: str, report: Report
    ) -> Applied:
        """Apply one report inside ``uow``; the feed hears of it after the commit.

        Raises UnknownOrder when the follower has no such order, ReportError when the report
        contradicts it. A report that brings nothing new is accepted and changes nothing.
        """
        repo = LifecycleRepository(uow.session)
        order = await repo.lock(follower_id, order_id)
        if order is None:
            raise UnknownOrder(order_id)
        ids = {
            "order_id": order_id,
            "follower_id": str(follower_id),
            "leader_id": str(order.leader_id),
            "fill_id": fill_ids(order.payload).get("fill_id"),
        }
        state = OrderState(
            order.status, Side(order.side), order.qty, order.filled_qty, order.avg_price
        )
        transition = apply_report(state, report)
        if transition is None:
            log.info("order_report_unchanged", **ids, reported=report.status.value)
            return Applied(order_id, order.status, changed=False)
        log.info(
            "order_report_applied",
            **ids,
            status=transition.status,
            filled_qty=fmt(transition.filled_qty),
        )
        await repo.record(
            order,
            transition.status,
            transition.filled_qty,
            transition.avg_price,
            transition.reason,
            transition.position_delta,
        )
        correction = tracking_correction(state, transition)
        if correction:
            leader_id = order.leader_id
            await PositionRepository(uow.session).correct_subscription(
                order.subscription_id, order.symbol, correction, leader_id
            )

            async def _corrected() -> None:
                self._on_correction(leader_id)

            uow.after_commit(_corrected)
        message = status_message(
            order_id,
            transition.status,
            transition.filled_qty,
            transition.avg_price,
            transition.reason,
        )

        async def _publish() -> None:
            await self._redis.publish(feed_channel(follower_id), message)

        uow.after_commit(_publish)
        return Applied(order_id, transition.status, changed=True)


def _pairs(fields: list[bytes] | None) -> dict[bytes, bytes]:
    """A stream entry's flat field list as a dict (None: an entry deleted since)."""
    return dict(zip(fields[::2], fields[1::2], strict=True)) if fields else {}


class _ReadShard:
    """Some of the report streams, read by one blocking XREADGROUP at a time."""

    def __init__(self) -> None:
        self.keys: list[bytes] = []
        # The STREAMS part of the read (its argument count and its encoding), made once per
        # change of the keys; the block time varies per read.
        self.argument: tuple[int, bytes] | None = None
        # Moves whenever keys are added: a read sent before a move is ended at once.
        self.generation = 0
        # The CLIENT ID of the connection blocked in the read, while it is.
        self.blocked: int | None = None
        # Its loop has run before: a restart makes the groups again.
        self.restarted = False

    def add(self, keys: list[bytes]) -> None:
        self.keys += keys
        self.argument = None
        self.generation += 1

    def streams_argument(self) -> tuple[int, bytes]:
        if self.argument is None:
            arguments = (b"STREAMS", *self.keys, *[b">"] * len(self.keys))
            self.argument = (len(arguments), b"".join(bulk(a) for a in arguments))
        return self.argument


class ReportReader:
    """Reads every follower's report stream with a consumer group; XACK after the commit.

    Entries another instance read but never acknowledged (it died) are taken over with
    XAUTOCLAIM once idle for ``claim_idle_ms``. A report that can never be applied (malformed,
    unknown order, contradicting it, refused by a constraint) goes to the follower's report
    dead-letter stream: one bad report never blocks the rest. One that failed only because
    the database was away or busy is retried, then left unacknowledged to be read again.

    The streams are read in shards of READ_SHARD, each by its own loop blocking in one
    XREADGROUP at a time on its own connection. Redis registers and unregisters every stream
    a blocking read names in one go, running nothing else meanwhile: one read naming 42,000
    streams took 60 ms of Redis (INFO commandstats), and every fill enqueued then waited as
    long. A shard's read blocks for long (``block_ms``), and a stream tracked meanwhile ends
    it early instead. Tracking and reclaiming run in a loop of their own.
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
        self._block_ms = block_ms
        self._claim_idle_ms = claim_idle_ms
        self._refresh_s = refresh_s
        self._consumer = f"{socket.gethostname()}-{id(self):x}"
        self._streams: dict[str, UUID] = {}
        self._shards: list[_ReadShard] = []
        self._readers: list[SupervisedTask] = []
        self._running = False
        # Followers counted when their ids were last read: a refresh reads them again only
        # when the count has moved.
        self._counted = -1
        # On a cluster, where reads do not block: set when a stream is tracked.
        self._tracked = asyncio.Event()
        self._claim_script = redis.register_script(_CLAIM_LUA)
        self._track_script = redis.register_script(_TRACK_LUA)
        self._loop = SupervisedTask("report_reader", self._run, Backoff(0.2, 10.0))
        if isinstance(redis, RedisCluster):
            self._readers.append(
                SupervisedTask(
                    "report_reader", partial(self._read_cluster_loop, redis), Backoff(0.2, 10.0)
                )
            )

    async def start(self) -> None:
        self._running = True
        self._loop.start()
        for reader in self._readers:
            reader.start()

    async def stop(self) -> None:
        self._running = False
        await self._loop.stop()
        for reader in self._readers:
            await reader.stop()

    async def track(self, follower_id: UUID) -> None:
        """Start reading a follower's report stream now (other instances find it on refresh)."""
        await self.track_many([follower_id])

    async def track_many(self, follower_ids: list[UUID]) -> None:
        """Start reading the report streams of ``follower_ids`` not read yet: their consumer
        groups created TRACK_SLICE to a round trip (one round trip per follower held a start
        with 42,000 followers busy for seconds, while the first fills were being sized)."""
        new = {
            key: follower_id
            for follower_id in follower_ids
            if (key := report_stream(follower_id)) not in self._streams
        }
        keys = list(new)
        grown: set[_ReadShard] = set()
        for first in range(0, len(keys), TRACK_SLICE):
            sliced = keys[first : first + TRACK_SLICE]
            await self._create_groups(sliced)
            self._streams.update((key, new[key]) for key in sliced)
            if not isinstance(self._redis, RedisCluster):
                grown |= self._place([key.encode() for key in sliced])
        if keys:
            await self._interrupt_reads(grown)

    async def _create_groups(self, keys: list[str]) -> None:
        if isinstance(self._redis, RedisCluster):
            await self._track_cluster(self._redis, keys)
        else:
            await self._track_script(keys=keys, args=[GROUP])

    def _place(self, keys: list[bytes]) -> set[_ReadShard]:
        """Add ``keys`` to the last shard while it has room, then to new shards (their loops
        started if the reader runs); return the shards that grew."""
        grown: set[_ReadShard] = set()
        while keys:
            if not self._shards or len(self._shards[-1].keys) >= READ_SHARD:
                shard = _ReadShard()
                self._shards.append(shard)
                reader = SupervisedTask(
                    "report_reader", partial(self._read_shard_loop, shard), Backoff(0.2, 10.0)
                )
                self._readers.append(reader)
                if self._running:
                    reader.start()
            shard = self._shards[-1]
            room = READ_SHARD - len(shard.keys)
            shard.add(keys[:room])
            keys = keys[room:]
            grown.add(shard)
        return grown

    async def _interrupt_reads(self, shards: set[_ReadShard]) -> None:
        """End the reads under way of ``shards`` (on a cluster: the pause between polls), so
        that their next reads name the streams just tracked."""
        self._tracked.set()
        for shard in shards:
            if shard.blocked is not None:
                await self._redis.client_unblock(shard.blocked)

    async def _track_cluster(self, cluster: RedisCluster, keys: list[str]) -> None:
        async with cluster.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.xgroup_create(key, GROUP, id="0", mkstream=True)
            results = await pipe.execute(raise_on_error=False)
        for result in results:
            # BUSYGROUP: the group exists already (created before, or by another instance).
            if isinstance(result, Exception) and "BUSYGROUP" not in str(result):
                raise result

    async def refresh(self, full: bool = False) -> None:
        """Track the followers made elsewhere since the last look (``full``: look anyway).

        Their count tells whether there are any: the service never deletes a follower.
        Reading all 42,000 ids every 5 s held the event loop for about 100 ms each time; now
        they are read only when the count moved, and then a page at a time, yielding between.
        A sweep now and then (``full``) covers a follower deleted by hand and another made.
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

    async def _read_shard_loop(self, shard: _ReadShard, backoff: Backoff) -> None:
        # The groups again on a restart (track_many made them before the first): a Redis
        # restarted empty has lost them, and every read would fail until they are made.
        if shard.restarted:
            keys = [key.decode() for key in shard.keys]
            for first in range(0, len(keys), TRACK_SLICE):
                await self._create_groups(keys[first : first + TRACK_SLICE])
        shard.restarted = True
        while True:
            # Each read blocks for up to a quarter less than the block time, at random, so
            # that the shards' reads time out spread over it: the 42 reads of 42,000 streams
            # sent again together every block time kept Redis from its other clients for
            # tens of ms (as one read naming them all did).
            await self.read_once(shard, self._block_ms - random.randint(0, self._block_ms // 4))
            backoff.reset()

    async def _read_cluster_loop(self, cluster: RedisCluster, backoff: Backoff) -> None:
        while True:
            self._tracked.clear()  # whatever is tracked from here on is read next time round
            if self._streams:
                await self._read_cluster(cluster, self._block_ms)
            else:
                await self._pause(self._block_ms / 1000)
            backoff.reset()

    async def _pause(self, pause_s: float) -> None:
        """Wait ``pause_s``, or until a stream is tracked."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._tracked.wait(), pause_s)

    async def claim_idle(self) -> int:
        """Take over and apply reports left unacknowledged by a consumer that went away."""
        keys = list(self._streams)
        applied = 0
        for first in range(0, len(keys), CLAIM_SLICE):
            sliced = keys[first : first + CLAIM_SLICE]
            if isinstance(self._redis, RedisCluster):
                batch = await self._claim_cluster(self._redis, sliced)
            else:
                # One script call per slice, answering only for the streams with something
                # to take over: a reply per stream (nearly always empty) was most of the cost.
                found = await self._claim_script(
                    keys=sliced, args=[GROUP, self._consumer, self._claim_idle_ms, 100]
                )
                batch = [
                    (key, [(eid, _pairs(f)) for eid, f in entries if f])
                    for key, entries in zip(found[::2], found[1::2], strict=True)
                ]
            if batch:
                applied += await self._apply_batch(batch)
            await asyncio.sleep(0)
        return applied

    async def _claim_cluster(self, cluster: RedisCluster, keys: list[str]) -> StreamBatch:
        async with cluster.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.xautoclaim(key, GROUP, self._consumer, self._claim_idle_ms, "0-0", count=100)
            claimed = await pipe.execute()
        return [
            (key.encode(), [(eid, f) for eid, f in result[1] if f is not None])
            for key, result in zip(keys, claimed, strict=True)
            if result[1]
        ]

    async def read_once(self, shard: _ReadShard, block_ms: int | None = None) -> int:
        """Read and apply one batch of new reports from ``shard``'s streams; return how many.

        Blocks up to ``block_ms`` (default: the reader's) while there are none."""
        assert isinstance(self._redis, Redis)
        block = max(MIN_BLOCK_MS, self._block_ms if block_ms is None else block_ms)
        generation = shard.generation
        head = (
            b"XREADGROUP", b"GROUP", GROUP.encode(), self._consumer.encode(),
            b"COUNT", b"100", b"BLOCK", b"%d" % block,
        )  # fmt: skip
        count, names = shard.streams_argument()
        read = b"*%d\r\n" % (len(head) + count) + b"".join(bulk(a) for a in head) + names
        async with raw_connection(self._redis) as conn:
            # CLIENT ID goes with the read: Redis runs the two back to back, so once its
            # answer is here the read is registered and CLIENT UNBLOCK can end it.
            await conn.send_packed_command(_CLIENT_ID + read)
            shard.blocked = await conn.read_response()
            try:
                if shard.generation != generation:
                    # Streams were tracked while the read went out: it does not name them.
                    await self._redis.client_unblock(shard.blocked)
                (reply,) = await read_replies(conn, 1)
            finally:
                shard.blocked = None
        # {stream: [[entry id, [field, value, ...]], ...]} (RESP3; RESP2 has [stream, entries]
        # pairs), nil when nothing came.
        streams = reply.items() if isinstance(reply, dict) else reply or ()
        batch: StreamBatch = [
            (key, [(entry_id, _pairs(fields)) for entry_id, fields in entries])
            for key, entries in streams
        ]
        return await self._apply_batch(batch)

    async def _read_cluster(self, cluster: RedisCluster, block_ms: int) -> int:
        """On a cluster one XREADGROUP may only name streams of one slot: a non-blocking read
        per slot group, pipelined per node, and a pause of the block time (at most
        CLUSTER_POLL_MAX_S) when all are empty."""
        async with cluster.pipeline(transaction=False) as pipe:
            for group in by_slot(list(self._streams)):
                pipe.xreadgroup(GROUP, self._consumer, dict.fromkeys(group, ">"), count=100)
            results = await pipe.execute()
        batch: StreamBatch = [entry for result in results if result for entry in result]
        if not batch:
            await self._pause(min(block_ms / 1000, CLUSTER_POLL_MAX_S))
            return 0
        return await self._apply_batch(batch)

    async def _apply_batch(self, batch: StreamBatch) -> int:
        """Apply ``batch`` and acknowledge it, retrying while the database is away or busy.

        After ``attempts`` tries the error goes up and the reports stay unacknowledged: they
        are read again (claimed once idle) rather than dead-lettered, since they are fine."""
        if not batch:
            # A read that timed out: each shard has one every block time, no unit of work.
            return 0
        backoff = Backoff(RETRY_INITIAL_S, RETRY_MAX_S)
        for attempt in range(1, self._attempts + 1):
            try:
                return await self._apply_batch_once(batch)
            except Exception as exc:
                if not is_transient(exc) or attempt == self._attempts:
                    raise
                REPORT_RETRIES.inc()
                delay = backoff.next_delay()
                log.warning(
                    "reports_retried", attempt=attempt, error=repr(exc), retry_in_s=round(delay, 3)
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # the last attempt returned or raised

    async def _apply_batch_once(self, batch: StreamBatch) -> int:
        count = 0
        acks: dict[str, list[bytes]] = {}
        dead: list[tuple[str, bytes]] = []
        async with UnitOfWork(self._sessionmaker) as uow:
            for key_raw, entries in batch or []:
                key = key_raw.decode()
                follower_id = self._streams[key]
                for entry_id, fields in entries:
                    count += 1
                    acks.setdefault(key, []).append(entry_id)
                    raw = fields.get(b"report")
                    try:
                        if raw is None:
                            raise ReportError("report: missing field")
                        order_id, report = parse_report(raw)
                        # A savepoint per report: whatever the database refuses in one report
                        # (a constraint, a bad byte) is rolled back alone.
                        async with uow.session.begin_nested():
                            await self._service.apply(uow, follower_id, order_id, report)
                        REPORTS.labels(outcome="applied").inc()
                    except (ReportError, UnknownOrder, SQLAlchemyError) as exc:
                        if is_transient(exc):
                            raise  # the whole batch again: nothing is wrong with the report
                        REPORTS.labels(outcome="dead_lettered").inc()
                        log.warning(
                            "report_rejected", follower_id=str(follower_id), error=str(exc)[:300]
                        )
                        dead.append((report_dead_letter_stream(follower_id), raw or b""))
            await uow.commit()
        if acks or dead:
            async with self._redis.pipeline(transaction=False) as pipe:
                for stream, raw in dead:
                    pipe.xadd(stream, {"report": raw})
                for key, ids in acks.items():
                    pipe.xack(key, GROUP, *ids)
                await pipe.execute()
        return count
