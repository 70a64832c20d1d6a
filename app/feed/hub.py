"""Fan-out of Redis feed messages to the websockets of this process.

One pub/sub connection per process, subscribed to the channels of followers that have a socket
open here; orders reach a socket whichever instance produced them. The admin's all-orders feed
(the dashboard) pattern-subscribes to every follower's channel on the same connection while such
a socket is open, so producers publish nothing extra for it.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from uuid import UUID

import structlog
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from app.dispatch.keys import feed_channel
from app.executors.protocol.messages import feed_message
from app.loops import Backoff, SupervisedTask
from app.metrics import FEED_SOCKETS

log = structlog.get_logger(__name__)

# A subscriber that cannot keep up loses its socket rather than the process its memory:
# this much text waiting (the default of COPYTRADE_FEED_QUEUE_BYTES).
QUEUE_BYTES = 1024 * 1024
# Keeps the connection in subscribed mode while no follower is connected.
_IDLE_CHANNEL = "copytrade:feed:_idle"
# Every follower's channel (braces are literal in Redis globs), and not the idle one.
FEED_PATTERN = feed_channel("*")
# How every feed message proper begins (messages.feed_message, reports.status_message); any
# other message on a follower's channel is the bare payload of a dispatched order.
FEED_MESSAGE = '{"type":'


class Subscriber:
    """One socket's feed messages, in order, until its stream ends.

    The socket's task waits for the next message on one future (``next``), which ``end``
    also wakes: a queue get wrapped in a task and raced with ``asyncio.wait`` against the
    socket's other events cost a task and three callbacks per message, and a follower's socket
    gets a message or two per fill.
    """

    def __init__(self, limit_bytes: int = QUEUE_BYTES) -> None:
        self._messages: deque[str] = deque()
        self._waiter: asyncio.Future[None] | None = None
        # Feed messages are ASCII JSON: their length is their size on the wire.
        self._limit = limit_bytes
        self._queued = 0
        # A subscriber that fell more than its limit behind: its queue is dropped at once and
        # ``next`` answers None, so its socket is closed rather than fed what is left.
        self.overflowed = False
        self.ended = False

    def offer(self, message: str) -> None:
        if self.overflowed or self.ended:
            return
        size = len(message)
        if self._queued + size > self._limit:
            self.overflowed = True
            self._messages.clear()
            self._queued = 0
        else:
            self._messages.append(message)
            self._queued += size
        self._wake()

    @property
    def queued_bytes(self) -> int:
        return self._queued

    def end(self) -> None:
        """Deliver nothing more: ``next`` answers None from now on."""
        self.ended = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def next(self) -> str | None:
        """The next message, waiting for one; None once ended or overflowed."""
        while not self.ended and not self.overflowed:
            if self._messages:
                message = self._messages.popleft()
                self._queued -= len(message)
                return message
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return None


class FeedHub:
    def __init__(self, redis: Redis, queue_bytes: int = QUEUE_BYTES) -> None:
        self._redis = redis
        self._queue_bytes = queue_bytes
        self._pubsub: PubSub = redis.pubsub(ignore_subscribe_messages=True)
        self._subscribers: dict[str, set[Subscriber]] = defaultdict(set)
        self._everything: set[Subscriber] = set()
        self._loop = SupervisedTask("feed_hub", self._pump, Backoff(0.2, 5.0))
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]

    async def subscribe(self, follower_id: UUID) -> Subscriber:
        channel = feed_channel(follower_id)
        sub = Subscriber(self._queue_bytes)
        async with self._lock:
            first = not self._subscribers[channel]
            self._subscribers[channel].add(sub)
            if first:
                await self._pubsub.subscribe(channel)
        FEED_SOCKETS.inc()
        return sub

    async def unsubscribe(self, follower_id: UUID, sub: Subscriber) -> None:
        channel = feed_channel(follower_id)
        FEED_SOCKETS.dec()
        async with self._lock:
            subs = self._subscribers.get(channel)
            if subs is None:
                return
            subs.discard(sub)
            if not subs:
                del self._subscribers[channel]
                try:
                    await self._pubsub.unsubscribe(channel)
                except Exception as exc:  # the pump resubscribes only live channels anyway
                    log.warning("feed_unsubscribe_failed", error=repr(exc))

    async def subscribe_all(self) -> Subscriber:
        """Every follower's feed messages, whichever instance published them."""
        sub = Subscriber(self._queue_bytes)
        async with self._lock:
            first = not self._everything
            self._everything.add(sub)
            if first:
                await self._pubsub.psubscribe(FEED_PATTERN)
        FEED_SOCKETS.inc()
        return sub

    async def unsubscribe_all(self, sub: Subscriber) -> None:
        FEED_SOCKETS.dec()
        async with self._lock:
            if sub not in self._everything:
                return
            self._everything.discard(sub)
            if not self._everything:
                try:
                    await self._pubsub.punsubscribe(FEED_PATTERN)
                except Exception as exc:  # the pump re-subscribes only while needed anyway
                    log.warning("feed_unsubscribe_failed", error=repr(exc))

    async def _pump(self, backoff: Backoff) -> None:
        async with self._lock:
            # After a reconnect redis-py resubscribes known channels; make sure of the idle one.
            await self._pubsub.subscribe(_IDLE_CHANNEL)
        backoff.reset()
        while True:
            message = await self._pubsub.get_message(timeout=1.0)
            if message is None:
                continue
            # A channel both subscribed and matched by the pattern arrives twice: once as
            # "message" (for its followers' sockets), once as "pmessage" (for the admin's).
            kind = message.get("type")
            if kind == "message":
                channel = message["channel"]
                channel = channel.decode() if isinstance(channel, bytes) else channel
                targets = tuple(self._subscribers.get(channel, ()))
            elif kind == "pmessage":
                targets = tuple(self._everything)
            else:
                continue
            data = message["data"]
            text = data.decode() if isinstance(data, bytes) else str(data)
            if not text.startswith(FEED_MESSAGE):
                # The enqueue script publishes a dispatched order's bare payload: wrapped here,
                # once per message, for the channels someone listens to, not in Redis for all.
                text = feed_message(text, "dispatched", None)
            for sub in targets:
                sub.offer(text)
