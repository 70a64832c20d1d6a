"""copy_open_positions jobs: written with the subscription, run until done."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import PositionCopy


class PositionCopyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, subscription_id: UUID, leader_id: UUID) -> None:
        self.session.add(PositionCopy(subscription_id=subscription_id, leader_id=leader_id))
        await self.session.flush()

    async def pending(self, older_than_s: float, limit: int) -> list[PositionCopy]:
        """Jobs not done, oldest first, locked until the transaction ends (``SKIP LOCKED``: a
        job another relay or the subscribing request is running is left to it)."""
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_s)
        stmt = (
            select(PositionCopy)
            .where(PositionCopy.done_at.is_(None), PositionCopy.created_at <= cutoff)
            .order_by(PositionCopy.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def lock(self, subscription_id: UUID) -> PositionCopy | None:
        """The job if it is pending and nobody else holds it."""
        stmt = (
            select(PositionCopy)
            .where(PositionCopy.subscription_id == subscription_id, PositionCopy.done_at.is_(None))
            .with_for_update(skip_locked=True)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def finish(self, job: PositionCopy, report: dict[str, Any]) -> None:
        job.done_at = datetime.now(UTC)
        job.attempts += 1
        job.report = report
        job.last_error = None
        await self.session.flush()

    async def failed(self, subscription_id: UUID, error: str) -> None:
        await self.session.execute(
            update(PositionCopy)
            .where(PositionCopy.subscription_id == subscription_id)
            .values(attempts=PositionCopy.attempts + 1, last_error=error[:300])
        )

    async def for_subscriptions(self, ids: Sequence[UUID]) -> dict[UUID, PositionCopy]:
        if not ids:
            return {}
        stmt = select(PositionCopy).where(PositionCopy.subscription_id.in_(ids))
        return {job.subscription_id: job for job in (await self.session.execute(stmt)).scalars()}
