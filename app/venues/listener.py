"""One venue leader's stream, kept connected and complete: the same loop for every venue.

A session: open the stream, authenticate and subscribe, then backfill over REST from the
last fill recorded while the live messages wait in a queue, and only then apply the queue.
Fills are so applied in exchange order even across a reconnect, and a fill that both the
backfill and the stream deliver is dropped by its id (in memory for the recent ones, by the
database's (leader_id, fill_id) key for the rest). The session ends, and is restarted with
jittered backoff, on any error, on a stream the venue declares expired, and on silence:
nothing received, not even a pong, for ``idle_timeout_s``.

A row that cannot be read (live or in a backfill page) is quarantined with its reason and
the rows around it are applied. The venue's positions are the truth: before each fill where the
venue gives the position before it, and between messages every ``resync_interval_s``, the
tracked positions are checked against the venue's (app.venues.resync).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
import structlog
from websockets.asyncio.client import ClientConnection, connect

from app.db.repositories.feeds import FeedRepository
from app.domain.model import Fill
from app.ingest.client import ListenerState, until_recorded
from app.ingest.frames import FrameError
from app.ingest.handler import process_fill, quarantine_frame
from app.loops import Backoff, SupervisedTask
from app.metrics import (
    FILLS_BACKFILLED,
    FRAMES_REJECTED,
    LISTENERS_CONNECTED,
    RECONNECTS,
    VENUE_ROWS_QUARANTINED,
)
from app.pipeline import Pipeline
from app.venues.feed import BadRow, Item, VenueAdapter
from app.venues.resync import PositionCheck

log = structlog.get_logger(__name__)
# Fill ids remembered per leader to drop stream/backfill overlaps without a database trip.
RECENT_IDS = 10_000


class IdleTimeout(ConnectionError):
    """Nothing came from the venue, not even a pong, for the idle timeout."""


@dataclass(frozen=True, slots=True)
class ListenerParams:
    ping_interval_s: float
    idle_timeout_s: float
    max_frame_bytes: int
    backfill_overlap_s: float
    equity_interval_s: float
    retry_initial_s: float
    retry_max_s: float
    resync_interval_s: float = 30.0


@dataclass(frozen=True, slots=True)
class _Message:
    raw: str | bytes
    items: list[Item]
    error: FrameError | None = None


class VenueListener:
    def __init__(
        self,
        adapter: VenueAdapter,
        pipeline: Pipeline,
        params: ListenerParams,
        floor: datetime,
    ) -> None:
        self.leader_id = adapter.leader_id
        self.adapter = adapter
        self._pipeline = pipeline
        self._params = params
        # Never backfill before the leader was added: older trades are not ours to copy.
        self._floor = floor
        self._last_event_at: datetime | None = None
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._last_traffic = time.monotonic()
        self._seeded = False
        self._check = PositionCheck(adapter, pipeline, self._until_done)
        self.status = ListenerState(kind=adapter.kind)
        backoff = Backoff(params.retry_initial_s, params.retry_max_s)
        self._stream = SupervisedTask(f"venue:{self.leader_id}", self._session, backoff)
        self._equity = SupervisedTask(
            f"equity:{self.leader_id}",
            self._equity_loop,
            Backoff(params.retry_initial_s, params.retry_max_s),
        )

    def start(self) -> None:
        self._stream.start()
        self._equity.start()

    @property
    def alive(self) -> bool:
        return self._stream.alive and self._equity.alive

    async def stop(self) -> None:
        await self._stream.stop()
        await self._equity.stop()
        await self.adapter.http.aclose()
        self.status.state = "stopped"

    # -- the stream -------------------------------------------------------------------------

    async def _session(self, backoff: Backoff) -> None:
        self.status.state = "connecting"
        try:
            await self._seed_positions()
            if self._pipeline.equity.leader(self.leader_id) is None:
                # Sizing needs the leader's equity before the first fill can be applied.
                await self._record_equity(await self.adapter.fetch_equity())
            url = await self.adapter.ws_url()
            async with connect(
                url,
                max_size=self._params.max_frame_bytes,
                # Pings are ours (_heartbeat): a pong counts as traffic for the idle watchdog.
                ping_interval=None,
                open_timeout=10,
                close_timeout=2,
            ) as ws:
                async with asyncio.timeout(10):
                    await self.adapter.on_open(ws)
                self.status.state = "connected"
                self.status.connected_at = datetime.now(UTC)
                self._last_traffic = time.monotonic()
                LISTENERS_CONNECTED.inc()
                log.info("venue_connected", leader_id=str(self.leader_id), venue=self.adapter.kind)
                try:
                    # Bounded: while fills are applied slowly (or the database is away) the
                    # socket stops being read and the venue's side buffers, not our memory.
                    queue: asyncio.Queue[_Message] = asyncio.Queue(maxsize=1000)
                    async with asyncio.TaskGroup() as group:
                        group.create_task(self._read(ws, queue))
                        group.create_task(self._heartbeat(ws))
                        if self.adapter.keepalive_interval_s:
                            group.create_task(self._keepalive(self.adapter.keepalive_interval_s))
                        group.create_task(self._apply(queue, backoff))
                finally:
                    LISTENERS_CONNECTED.dec()
        except asyncio.CancelledError:
            raise
        except BaseExceptionGroup as group:
            self._failed(group.exceptions[0])
            raise group.exceptions[0] from None
        except Exception as exc:
            self._failed(exc)
            raise

    def _failed(self, exc: BaseException) -> None:
        self.status.last_error = f"{type(exc).__name__}: {exc}"[:300]
        self.status.reconnects += 1
        self.status.state = "connecting"
        RECONNECTS.inc()
        log.warning(
            "venue_disconnected",
            leader_id=str(self.leader_id),
            venue=self.adapter.kind,
            error=self.status.last_error,
        )

    async def _read(self, ws: ClientConnection, queue: asyncio.Queue[_Message]) -> None:
        idle = self._params.idle_timeout_s
        while True:
            remaining = idle - (time.monotonic() - self._last_traffic)
            if remaining <= 0:
                raise IdleTimeout(f"nothing received for {idle:g} s")
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can lose a
                # cancellation that races the result, and this loop would never stop.
                async with asyncio.timeout(remaining):
                    raw = await ws.recv()
            except TimeoutError:
                continue  # the loop head decides: a pong may have come meanwhile
            received_at = datetime.now(UTC)
            self._last_traffic = time.monotonic()
            self.status.last_message_at = received_at
            try:
                fills = self.adapter.parse(raw, received_at)
            except FrameError as exc:
                FRAMES_REJECTED.labels(source=self.adapter.kind).inc()
                log.warning(
                    "frame_rejected",
                    leader_id=str(self.leader_id),
                    source=self.adapter.kind,
                    error=str(exc),
                )
                if exc.quarantine is not None:
                    await queue.put(_Message(raw, [], exc))
                continue
            if fills:
                await queue.put(_Message(raw, fills))

    async def _heartbeat(self, ws: ClientConnection) -> None:
        venue_interval = self.adapter.app_ping_interval_s
        interval = min(self._params.ping_interval_s, venue_interval or float("inf"))
        while True:
            await asyncio.sleep(interval)
            frame = self.adapter.ping_frame()
            if frame is not None:
                # The venue's pong is a message: _read counts it as traffic.
                await ws.send(frame)
                continue
            pong = await ws.ping()
            try:
                async with asyncio.timeout(interval):
                    await pong
                self._last_traffic = time.monotonic()
            except TimeoutError:
                pass  # the idle watchdog in _read decides when silence is too long

    async def _keepalive(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.adapter.keepalive()

    async def _apply(self, queue: asyncio.Queue[_Message], backoff: Backoff) -> None:
        """Backfill first, page by page, then the live messages queued meanwhile, in order;
        between messages, the venue's positions on schedule."""
        since = await self._resume_from()
        total = fresh = 0
        async for page in self.adapter.backfill(since, datetime.now(UTC)):
            for item in page:
                total += 1
                if isinstance(item, Fill) and item.fill_id not in self._recent:
                    fresh += 1
                await self._item(item, None)
        self.status.backfilled += fresh
        FILLS_BACKFILLED.labels(venue=self.adapter.kind).inc(fresh)
        log.info(
            "venue_backfilled",
            leader_id=str(self.leader_id),
            venue=self.adapter.kind,
            since=since.isoformat(),
            fills=total,
            new=fresh,
        )
        backoff.reset()
        interval = self._params.resync_interval_s
        next_check = time.monotonic() + interval
        while True:
            if time.monotonic() >= next_check:
                # Between messages, even on a busy stream: this task applies them in order.
                await self._check.compare()
                next_check = time.monotonic() + interval
            try:
                async with asyncio.timeout(next_check - time.monotonic()):
                    message = await queue.get()
            except TimeoutError:
                continue
            if message.error is not None:
                await self._until_done(lambda m=message: self._quarantine(m))  # type: ignore[misc]
                continue
            for item in message.items:
                await self._item(item, message.raw)

    async def _item(self, item: Item, raw: str | bytes | None) -> None:
        if isinstance(item, BadRow):
            # Kept once, though every backfill that reaches it reads it again.
            key = "bad:" + hashlib.sha256(item.raw.encode()).hexdigest()
            if key not in self._recent:
                await self._until_done(lambda: self._quarantine_row(item))
                self._remember(key)
            return
        await self._process(item, raw if raw is not None else msgspec.json.encode(item))

    async def _quarantine_row(self, row: BadRow) -> None:
        VENUE_ROWS_QUARANTINED.labels(venue=self.adapter.kind, reason=row.reason.value).inc()
        log.warning(
            "venue_row_quarantined",
            leader_id=str(self.leader_id),
            venue=self.adapter.kind,
            error=row.error[:300],
        )
        await quarantine_frame(
            self._pipeline,
            self.leader_id,
            row.raw,
            row.reason,
            datetime.now(UTC),
            self.adapter.kind,
        )

    async def _quarantine(self, message: _Message) -> None:
        assert message.error is not None
        assert message.error.quarantine is not None
        await quarantine_frame(
            self._pipeline,
            self.leader_id,
            message.raw,
            message.error.quarantine,
            datetime.now(UTC),
            self.adapter.kind,
        )

    async def _resume_from(self) -> datetime:
        if self._last_event_at is None:
            async with self._pipeline.unit_of_work() as uow:
                self._last_event_at = await FeedRepository(uow.session).last_trade_at(
                    self.leader_id
                )
        if self._last_event_at is None:
            return self._floor
        # Venues may report fills of one instant out of order: look back a little (overlaps
        # are dropped by fill id), but never before the floor: what precedes it is in the
        # starting positions, and applying it again would count it twice.
        overlap = timedelta(seconds=self._params.backfill_overlap_s)
        return max(self._floor, self._last_event_at - overlap)

    async def _process(self, fill: Fill, raw: str | bytes) -> None:
        start = self.adapter.position_before(fill)
        if fill.fill_id in self._recent:
            return
        if start is not None:
            await self._until_done(lambda: self._check.before_fill(fill, start))
        await self._until_done(lambda: process_fill(self._pipeline, fill, raw, self.adapter.kind))
        self._check.applied(fill)
        self._remember(fill.fill_id)
        if self._last_event_at is None or fill.event_at > self._last_event_at:
            self._last_event_at = fill.event_at
        self.status.last_fill_at = fill.event_at

    def _remember(self, key: str) -> None:
        self._recent[key] = None
        if len(self._recent) > RECENT_IDS:
            self._recent.popitem(last=False)

    async def _until_done(self, call: Callable[[], Awaitable[object]]) -> None:
        """While Postgres is away the listener pauses on this fill instead of dropping it
        (and stops reading: the queue is bounded)."""
        retry = Backoff(self._params.retry_initial_s, self._params.retry_max_s)
        await until_recorded(call, self.status, self.leader_id, retry)

    # -- REST state: positions once, equity on a schedule ------------------------------------

    async def _seed_positions(self) -> None:
        """A new leader's open positions are its starting point: without them, its first
        closing trade would look like a new position in the other direction."""
        if self._seeded:
            return
        venue = await self.adapter.positions()
        positions = {p.symbol: p.qty for p in venue if p.qty != 0}
        # Taken when the answer is in: a trade the venue already counted in it must not be
        # backfilled on top (a trade racing the request is the one ambiguity left).
        as_of = datetime.now(UTC)
        async with self._pipeline.unit_of_work() as uow:
            repo = FeedRepository(uow.session)
            seeded = await repo.seed_positions(self.leader_id, positions, as_of)
            await uow.commit()
        await self._check.save_marks(venue, as_of)
        if seeded:
            self._floor = max(self._floor, as_of)
            self._pipeline.sizing.invalidate(self.leader_id)
            log.info(
                "venue_positions_seeded", leader_id=str(self.leader_id), symbols=len(positions)
            )
        self._seeded = True

    async def _equity_loop(self, backoff: Backoff) -> None:
        while True:
            equity = await self.adapter.fetch_equity()
            await self._record_equity(equity)
            self.status.equity_at = datetime.now(UTC)
            backoff.reset()
            await asyncio.sleep(self._params.equity_interval_s)

    async def _record_equity(self, equity: Decimal) -> None:
        if not equity.is_finite() or equity <= 0:
            # An empty or liquidated account: nothing can be sized against it, and the
            # snapshot table only holds positive equity.
            log.warning("venue_equity_not_positive", leader_id=str(self.leader_id))
            return
        async with self._pipeline.unit_of_work() as uow:
            await self._pipeline.record_equity(
                uow, equity, datetime.now(UTC), leader_id=self.leader_id
            )
            await uow.commit()
