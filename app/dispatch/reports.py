"""Executor reports applied to orders and positions: the one place a report takes effect.

Reports arrive on ``copytrade:reports:{<follower_id>}`` (read by ``app.dispatch.report_reader``)
or over REST. Both paths go through ``ReportService.apply`` in one unit of work; the feed is
told after commit. The report's schema is the executor side's
(``app.executors.protocol.reports``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import msgspec
import structlog

from app.db.repositories.orders import LifecycleRepository
from app.db.repositories.positions import PositionRepository
from app.db.session import UnitOfWork
from app.dispatch.keys import feed_channel
from app.domain.decimals import fmt
from app.domain.lifecycle import OrderState, Report, apply_report, tracking_correction
from app.domain.model import Side
from app.redisconn import AnyRedis

log = structlog.get_logger(__name__)
_encoder = msgspec.json.Encoder()


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
        locked = await repo.lock(follower_id, order_id)
        if locked is None:
            raise UnknownOrder(order_id)
        order, leader_id, fill_id = locked
        ids = {
            "order_id": order_id,
            "follower_id": str(follower_id),
            "leader_id": str(leader_id),
            "fill_id": fill_id,
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
