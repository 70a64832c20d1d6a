"""Reading followers' order streams and reporting back: what every executor builds on.

For follower executors (the execute role, the paper executor, operators' own), on the one
consumer-group core (``app.consumer_group``): XACK only after the handler returns; entries
idle past ``claim_idle_ms`` (a crashed consumer's, or a failed handling) are taken over; a
dead-letter stream after ``max_deliveries``; orders past ``valid_until`` are not executed but
reported expired. The handler is told how often an entry was delivered: more than once means
it may have been acted on already (the exactly-once rule of ``app.venues.executor``).

Two shapes: :class:`GroupConsumer`, one follower's stream polled by its own loop, and
:class:`OrderReads`, the streams of many followers read by a few shared blocking reads, each
follower's orders handled one at a time in stream order by its own loop (:meth:`consume`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec
import structlog

from app.consumer_group.core import Entry, GroupConfig, GroupCore
from app.consumer_group.shared_read import READ_SHARD, SharedReads
from app.dispatch.keys import dead_letter_stream, order_stream, report_stream
from app.loops import Backoff, SupervisedTask, supervise
from app.redisconn import AnyRedis, Gathered

log = structlog.get_logger(__name__)
_encoder = msgspec.json.Encoder()

DEFAULT_TTL = timedelta(seconds=30)
# Entries left pending by an earlier consumer that a new one looks at before reading on.
TAKEOVER_MAX = 1000
Order = dict[str, Any]
Handler = Callable[[Order], Awaitable[None]]
ConsumerConfig = GroupConfig


@dataclass(frozen=True, slots=True)
class Delivery:
    """How an entry reached the handler: ``count`` > 1 means some consumer read it before
    (and crashed, or its handler failed), so it may have been acted on already."""

    entry_id: str
    count: int
    # When the read that delivered it was sent (``time.monotonic()``); 0.0 when unknown.
    read_at: float = 0.0


DeliveryHandler = Callable[[Order, Delivery], Awaitable[None]]


class Fenced(RuntimeError):
    """The follower's stream is fenced off (its account disconnected): nothing is read."""


def valid_until(order: Order) -> datetime:
    """When the order goes stale. Entries written before valid_until existed get the default."""
    if "valid_until" in order:
        return datetime.fromisoformat(order["valid_until"])
    return datetime.fromisoformat(order["created_at"]) + DEFAULT_TTL


class ReportWriter:
    """Report back to Copytrade on the follower's report stream; with ``gathered``, the
    reports of many followers' loops in one round trip."""

    def __init__(self, redis: AnyRedis, gathered: Gathered | None = None) -> None:
        self.redis = redis
        self._gathered = gathered

    async def report(
        self,
        follower_id: UUID | str,
        order_id: str,
        status: str,
        filled_qty: Decimal = Decimal(0),
        avg_price: Decimal | None = None,
        reason: str | None = None,
    ) -> None:
        body: dict[str, Any] = {"order_id": order_id, "status": status, "filled_qty": filled_qty}
        if avg_price is not None:
            body["avg_price"] = avg_price
        if reason is not None:
            body["reason"] = reason
        payload = _encoder.encode(body)
        if self._gathered is not None:
            await self._gathered.execute("XADD", report_stream(follower_id), "*", "report", payload)
        else:
            await self.redis.xadd(report_stream(follower_id), {"report": payload})


async def handle_entry(
    core: GroupCore,
    reports: ReportWriter,
    follower_id: str,
    entry: Entry,
    deliver: DeliveryHandler,
) -> int:
    """Hand one order entry to ``deliver`` (or report it expired), then acknowledge it;
    return 1, or 0 when handling failed and the entry stays for a later delivery."""
    try:
        order: Order = msgspec.json.decode(entry.fields.get(b"order") or b"")
        if datetime.now(UTC) > valid_until(order):
            await reports.report(follower_id, order["order_id"], "expired")
        else:
            entry_id = entry.entry_id
            text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
            await deliver(order, Delivery(text, entry.deliveries, entry.read_at))
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        # Left unacknowledged: reclaimed after claim_idle_ms, dead-lettered after
        # max_deliveries. One bad entry does not hold up the rest.
        log.warning("order_handling_failed", stream=entry.stream, error=repr(exc))
        return 0
    await core.ack(entry.stream, entry.entry_id)
    return 1


class GroupConsumer:
    """One follower's order stream, polled by its own loop; ``handler`` gets each live order
    with its :class:`Delivery`."""

    def __init__(
        self,
        redis: AnyRedis,
        follower_id: UUID | str,
        config: GroupConfig,
        handler: DeliveryHandler,
        reports: ReportWriter | None = None,
    ) -> None:
        self.follower_id = str(follower_id)
        self.stream = order_stream(follower_id)
        self.core = GroupCore(redis, config, lambda _stream: dead_letter_stream(follower_id))
        self.deliver = handler
        self.reports = reports or ReportWriter(redis)
        self.handled = 0

    @property
    def dead(self) -> int:
        return self.core.dead

    async def ensure_group(self) -> None:
        await self.core.create_groups([self.stream])

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; the batch in hand is finished first (drain)."""

        async def body(backoff: Backoff) -> None:
            await self.ensure_group()
            while not stop.is_set():
                await self.poll_once()
                backoff.reset()

        await supervise(f"consumer:{self.stream}", body, Backoff(0.2, 10.0), stop)

    async def poll_once(self, block_ms: int | None = None) -> int:
        """Reclaim stale entries, then read new ones; return how many entries were handled."""
        entries = await self.core.claim([self.stream])
        entries += await self.core.read(
            [self.stream], self.core.config.block_ms if block_ms is None else block_ms
        )
        handled = 0
        for entry in entries:
            handled += await handle_entry(
                self.core, self.reports, self.follower_id, entry, self.deliver
            )
        self.handled += handled
        return handled


class OrderConsumer(GroupConsumer):
    """The core for handlers that act the same however often an order is delivered."""

    def __init__(
        self,
        redis: AnyRedis,
        follower_id: UUID | str,
        config: GroupConfig,
        handler: Handler,
        reports: ReportWriter | None = None,
    ) -> None:
        async def deliver(order: Order, _delivery: Delivery) -> None:
            await handler(order)

        super().__init__(redis, follower_id, config, deliver, reports)
        self.handler = handler


class Inbox:
    """One follower's entries as read, waiting for its loop, which takes one at a time."""

    def __init__(self, follower_id: str) -> None:
        self.follower_id = follower_id
        self._queue: asyncio.Queue[Entry] = asyncio.Queue()
        self.busy = False

    @property
    def idle(self) -> bool:
        """Holds no entry: none waiting, none in hand."""
        return not self.busy and self._queue.empty()

    @property
    def waiting(self) -> int:
        return self._queue.qsize()

    def put(self, entry: Entry) -> None:
        self._queue.put_nowait(entry)

    async def next(self) -> Entry:
        self.busy = False
        entry = await self._queue.get()
        self.busy = True
        return entry


class OrderReads:
    """The order streams of the followers being consumed (:meth:`consume`), read with a few
    shared blocking reads (``app.consumer_group.shared_read``) and dispatched to each
    follower's own loop: one slow follower never holds up another, and each sees its orders
    in stream order. A follower's entries read but not yet handled stay pending in Redis
    (unacknowledged), so a crash loses none of them.

    ``fence`` (a follower's fence key): a fenced-off follower's group is never made again,
    and its stream is dropped from the reads when its group is found gone.
    """

    def __init__(
        self,
        redis: AnyRedis,
        config: GroupConfig,
        reports: ReportWriter | None = None,
        fence: Callable[[str], str] | None = None,
        shard_size: int = READ_SHARD,
        name: str = "order_reads",
    ) -> None:
        self._followers: dict[str, str] = {}  # stream -> follower id
        self.core = GroupCore(
            redis, config, lambda stream: dead_letter_stream(self._followers[stream])
        )
        # Many followers' loops, woken by one read: their reports and acks are gathered.
        gathered = Gathered(redis)
        self.core.gathered = gathered
        self.reports = reports or ReportWriter(redis, gathered)
        self._fence: Callable[[str], str] | None = None
        if fence is not None:
            self._fence = lambda stream: fence(self._followers[stream])
        self.reads = SharedReads(self.core, name, self._dispatch, shard_size, fence=self._fence)
        self._inboxes: dict[str, Inbox] = {}
        # Orders handed to the followers' loops and not handled yet, and when one was last
        # handed out or handled (monotonic).
        self._in_hand = 0
        self._active_at = 0.0
        self._claimer = SupervisedTask(f"{name}:claim", self._claim_loop, Backoff(0.2, 10.0))

    def start(self) -> None:
        self.reads.start()
        self._claimer.start()

    async def stop(self) -> None:
        await self._claimer.stop()
        await self.reads.stop()

    async def consume(self, follower_id: UUID | str, deliver: DeliveryHandler) -> None:
        """Handle the follower's orders with ``deliver``, one at a time, until cancelled.

        Raises :class:`Fenced` when the follower's stream is fenced off. Its group is made
        here when missing (Redis lost it), never for a fenced-off stream.
        """
        follower = str(follower_id)
        stream = order_stream(follower)
        self._followers[stream] = follower
        fenced = await self.core.create_groups([stream], self._fence)
        if fenced:
            raise Fenced(f"follower {follower}: its order stream is fenced off")
        await self._take_over(stream, follower, deliver)
        inbox = Inbox(follower)
        self._inboxes[stream] = inbox
        try:
            await self.reads.add([stream])
            while True:
                entry = await inbox.next()
                try:
                    await handle_entry(self.core, self.reports, follower, entry, deliver)
                finally:
                    self._in_hand -= 1
                    self._active_at = time.monotonic()
        finally:
            self._in_hand -= inbox.waiting  # left pending in Redis, not handled here
            if self._inboxes.get(stream) is inbox:
                del self._inboxes[stream]
                await self.reads.remove([stream])

    async def _take_over(self, stream: str, follower: str, deliver: DeliveryHandler) -> None:
        """Handle what an earlier consumer of the stream left pending (it died, or lost the
        account) before any newer entry, each once idle for ``claim_idle_ms`` (its consumer
        may still be finishing it until then): the follower's orders stay in stream order.
        An entry whose handling fails here is left to the claims that follow."""
        config = self.core.config
        tried: set[bytes] = set()
        while True:
            held: Any = await self.core.redis.xpending_range(
                stream, config.group, min="-", max="+", count=TAKEOVER_MAX
            )
            if not {entry["message_id"] for entry in held} - tried:
                return
            claimed = await self.core.claim([stream])
            for entry in claimed:
                tried.add(entry.entry_id)
                await handle_entry(self.core, self.reports, follower, entry, deliver)
            if not claimed:
                await asyncio.sleep(config.claim_idle_ms / 4000)

    async def quiet(self, quiet_s: float, most_s: float) -> None:
        """Wait until every order handed out was handled and none for ``quiet_s``, or
        ``most_s`` at most: the work that follows orders (account reads, stored pushes) waits
        for a fan-out's orders to be placed, rather than taking the event loop from the last
        of them."""
        deadline = time.monotonic() + most_s
        while True:
            now = time.monotonic()
            wait = quiet_s if self._in_hand > 0 else self._active_at + quiet_s - now
            wait = min(wait, deadline - now)
            if wait <= 0:
                return
            await asyncio.sleep(wait)

    async def _dispatch(self, batch: list[Entry]) -> None:
        for entry in batch:
            inbox = self._inboxes.get(entry.stream)
            # No inbox: the follower stopped meanwhile; the entry stays pending, for whoever
            # consumes the stream next (claimed once idle).
            if inbox is not None:
                inbox.put(entry)
                self._in_hand += 1
                self._active_at = time.monotonic()

    async def claim_idle(self) -> int:
        """Take over the entries left unacknowledged for ``claim_idle_ms`` on the streams of
        followers whose loops hold none (a loop's own entries stay its own)."""
        idle = [stream for stream, inbox in self._inboxes.items() if inbox.idle]
        claimed = await self.core.claim(idle) if idle else []
        await self._dispatch(claimed)
        return len(claimed)

    async def _claim_loop(self, backoff: Backoff) -> None:
        while True:
            await asyncio.sleep(self.core.config.claim_idle_ms / 2000)
            await self.claim_idle()
            backoff.reset()
