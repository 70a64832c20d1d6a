"""Executor reports: parse, apply to orders and positions, publish each status change.

Reports arrive on ``copytrade:reports:{<follower_id>}`` (field ``report``, JSON) or over REST.
Both paths go through ``ReportService.apply`` in one unit of work; the feed is told after commit.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

import msgspec
import structlog
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.repositories.accounts import FollowerRepository
from app.db.repositories.orders import LifecycleRepository
from app.db.session import UnitOfWork
from app.dispatch.keys import feed_channel, report_dead_letter_stream, report_stream
from app.domain.decimals import fmt
from app.domain.lifecycle import OrderState, Report, ReportError, ReportStatus, apply_report
from app.domain.model import Side
from app.loops import Backoff, supervise
from app.metrics import REPORTS

log = structlog.get_logger(__name__)

GROUP = "copytrade"
# What redis-py returns for XREADGROUP without decode_responses: [(key, [(id, fields)])].
StreamBatch = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] | None
_encoder = msgspec.json.Encoder()


class ReportFrame(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The report an executor sends (JSON in the ``report`` field of a stream entry)."""

    order_id: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    status: Literal["accepted", "partially_filled", "filled", "rejected", "expired"]
    filled_qty: Decimal = Decimal(0)
    avg_price: Decimal | None = None
    reason: Annotated[str, msgspec.Meta(max_length=200)] | None = None


_decoder = msgspec.json.Decoder(ReportFrame)


def parse_report(raw: str | bytes) -> tuple[str, Report]:
    """Decode one stream report. Raises ReportError naming the field."""
    try:
        frame = _decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ReportError(str(exc)) from exc
    for name, value in (("filled_qty", frame.filled_qty), ("avg_price", frame.avg_price)):
        if value is not None and not value.is_finite():
            raise ReportError(f"{name}: must be finite")
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
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

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
        state = OrderState(
            order.status, Side(order.side), order.qty, order.filled_qty, order.avg_price
        )
        transition = apply_report(state, report)
        if transition is None:
            return Applied(order_id, order.status, changed=False)
        await repo.record(
            order,
            transition.status,
            transition.filled_qty,
            transition.avg_price,
            transition.reason,
            transition.position_delta,
        )
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


class ReportReader:
    """Reads every follower's report stream with a consumer group; XACK after the commit."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis: Redis,
        service: ReportService,
        block_ms: int,
        refresh_s: float = 5.0,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._redis = redis
        self._service = service
        self._block_ms = block_ms
        self._refresh_s = refresh_s
        self._consumer = f"{socket.gethostname()}-{id(self):x}"
        self._streams: dict[str, UUID] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(
            supervise("report_reader", self._run, Backoff(0.2, 10.0)), name="report-reader"
        )

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _refresh_streams(self) -> None:
        async with self._sessionmaker() as session:
            followers = await FollowerRepository(session).all_ids()
        for follower_id in followers:
            key = report_stream(follower_id)
            if key in self._streams:
                continue
            try:
                await self._redis.xgroup_create(key, GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            self._streams[key] = follower_id

    async def _run(self, backoff: Backoff) -> None:
        self._streams.clear()
        await self._refresh_streams()
        # First our own pending entries (read before a crash, never acknowledged), then new ones.
        start_id = "0"
        loop = asyncio.get_running_loop()
        refreshed = loop.time()
        while True:
            if loop.time() - refreshed > self._refresh_s:
                await self._refresh_streams()
                refreshed = loop.time()
            if not self._streams:
                await asyncio.sleep(self._block_ms / 1000)
                continue
            handled = await self.read_once(start_id)
            if start_id == "0" and handled == 0:
                start_id = ">"
            backoff.reset()

    async def read_once(self, start_id: str = ">") -> int:
        """Read and apply one batch of reports from all streams; return how many were read."""
        response: StreamBatch = await self._redis.xreadgroup(  # type: ignore[assignment]
            GROUP,
            self._consumer,
            dict.fromkeys(self._streams, start_id),
            count=100,
            block=self._block_ms if start_id == ">" else None,
        )
        count = 0
        acks: dict[str, list[bytes]] = {}
        dead: list[tuple[str, bytes]] = []
        async with UnitOfWork(self._sessionmaker) as uow:
            for key_raw, entries in response or []:
                key = key_raw.decode()
                follower_id = self._streams[key]
                for entry_id, fields in entries:
                    count += 1
                    acks.setdefault(key, []).append(entry_id)
                    raw = fields.get(b"report") if fields else None
                    try:
                        if raw is None:
                            raise ReportError("report: missing field")
                        order_id, report = parse_report(raw)
                        # Both rejections happen before any write, so no savepoint is needed.
                        await self._service.apply(uow, follower_id, order_id, report)
                        REPORTS.labels(outcome="applied").inc()
                    except (ReportError, UnknownOrder) as exc:
                        REPORTS.labels(outcome="rejected").inc()
                        log.warning("report_rejected", follower_id=str(follower_id), error=str(exc))
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
