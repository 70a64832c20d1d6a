"""The executor side of the order stream: the one consumer-group core every executor uses.

For follower executors (the execute role, the paper executor, operators' own). Per follower
stream and executor group: XREADGROUP with a block time below the socket timeout; XACK only
after the handler returns; XAUTOCLAIM of entries idle past a timeout (a crashed consumer's);
a dead-letter stream after ``max_deliveries``; orders past ``valid_until`` are not executed but
reported expired. The handler is told how often an entry was delivered: more than once means
it may have been acted on already (the exactly-once rule of ``app.venues.executor``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec
import structlog
from redis.exceptions import ResponseError

from app.dispatch.keys import dead_letter_stream, order_stream, report_stream
from app.loops import Backoff, supervise
from app.redisconn import AnyRedis

log = structlog.get_logger(__name__)
_encoder = msgspec.json.Encoder()

DEFAULT_TTL = timedelta(seconds=30)
Order = dict[str, Any]
StreamBatch = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] | None
Handler = Callable[[Order], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Delivery:
    """How an entry reached the handler: ``count`` > 1 means some consumer read it before
    (and crashed, or its handler failed), so it may have been acted on already."""

    entry_id: str
    count: int


DeliveryHandler = Callable[[Order, Delivery], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ConsumerConfig:
    group: str
    consumer: str
    block_ms: int = 2000  # keep below the client's socket timeout
    claim_idle_ms: int = 30_000
    max_deliveries: int = 5
    batch: int = 100
    # Where a new group starts: "0" the whole stream, "$" only what is added from now on.
    start_id: str = "0"


def valid_until(order: Order) -> datetime:
    """When the order goes stale. Entries written before valid_until existed get the default."""
    if "valid_until" in order:
        return datetime.fromisoformat(order["valid_until"])
    return datetime.fromisoformat(order["created_at"]) + DEFAULT_TTL


class ReportWriter:
    """Report back to Copytrade on the follower's report stream."""

    def __init__(self, redis: AnyRedis) -> None:
        self.redis = redis

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
        await self.redis.xadd(report_stream(follower_id), {"report": _encoder.encode(body)})


class GroupConsumer:
    """The consumer-group protocol over one follower's order stream; ``handler`` gets each
    live order with its :class:`Delivery`."""

    def __init__(
        self,
        redis: AnyRedis,
        follower_id: UUID | str,
        config: ConsumerConfig,
        handler: DeliveryHandler,
        reports: ReportWriter | None = None,
    ) -> None:
        self.redis = redis
        self.follower_id = str(follower_id)
        self.stream = order_stream(follower_id)
        self.config = config
        self.deliver = handler
        self.reports = reports or ReportWriter(redis)
        self.handled = 0
        self.dead = 0

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(
                self.stream, self.config.group, id=self.config.start_id, mkstream=True
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; the batch in hand is finished first (drain)."""

        async def body(backoff: Backoff) -> None:
            await self.ensure_group()
            while not stop.is_set():
                await self.poll_once()
                backoff.reset()

        # The service's loop shape: errors logged and counted, retried with jittered backoff.
        await supervise(f"consumer:{self.stream}", body, Backoff(0.2, 10.0), stop)

    async def poll_once(self, block_ms: int | None = None) -> int:
        """Reclaim stale entries, then read new ones; return how many entries were handled."""
        handled = await self._reclaim()
        response: StreamBatch = await self.redis.xreadgroup(  # type: ignore[assignment]
            self.config.group,
            self.config.consumer,
            {self.stream: ">"},
            count=self.config.batch,
            block=self.config.block_ms if block_ms is None else block_ms,
        )
        for _key, entries in response or []:
            for entry_id, fields in entries:
                handled += await self._handle(entry_id, fields)
        return handled

    async def _reclaim(self) -> int:
        """Take over entries another consumer read but never acknowledged (it crashed)."""
        claimed = await self.redis.xautoclaim(
            self.stream,
            self.config.group,
            self.config.consumer,
            min_idle_time=self.config.claim_idle_ms,
            start_id="0-0",
            count=self.config.batch,
        )
        entries: list[tuple[bytes, dict[bytes, bytes] | None]] = claimed[1]
        handled = 0
        for entry_id, fields in entries:
            if fields is None:  # trimmed meanwhile
                continue
            deliveries = await self._deliveries(entry_id)
            if deliveries > self.config.max_deliveries:
                await self._dead_letter(entry_id, fields)
                continue
            # XAUTOCLAIM counts the claim itself as a delivery.
            handled += await self._handle(entry_id, fields, max(deliveries, 2))
        return handled

    async def _deliveries(self, entry_id: bytes | str) -> int:
        info = await self.redis.xpending_range(
            self.stream, self.config.group, min=entry_id, max=entry_id, count=1
        )
        return int(info[0]["times_delivered"]) if info else 0

    async def _dead_letter(self, entry_id: bytes | str, fields: dict[Any, Any]) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(dead_letter_stream(self.follower_id), fields)
            pipe.xack(self.stream, self.config.group, entry_id)
            await pipe.execute()
        self.dead += 1
        log.warning("order_dead_lettered", stream=self.stream, entry_id=str(entry_id))

    async def _handle(self, entry_id: bytes | str, fields: dict[Any, Any], count: int = 1) -> int:
        try:
            order: Order = msgspec.json.decode(fields.get(b"order") or b"")
            if datetime.now(UTC) > valid_until(order):
                await self.reports.report(self.follower_id, order["order_id"], "expired")
            else:
                entry = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                await self.deliver(order, Delivery(entry, count))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Left unacknowledged: reclaimed after claim_idle_ms, dead-lettered after
            # max_deliveries. One bad entry does not hold up the rest of the batch.
            log.warning("order_handling_failed", stream=self.stream, error=repr(exc))
            return 0
        await self.redis.xack(self.stream, self.config.group, entry_id)
        self.handled += 1
        return 1


class OrderConsumer(GroupConsumer):
    """The core for handlers that act the same however often an order is delivered."""

    def __init__(
        self,
        redis: AnyRedis,
        follower_id: UUID | str,
        config: ConsumerConfig,
        handler: Handler,
        reports: ReportWriter | None = None,
    ) -> None:
        async def deliver(order: Order, _delivery: Delivery) -> None:
            await handler(order)

        super().__init__(redis, follower_id, config, deliver, reports)
        self.handler = handler
