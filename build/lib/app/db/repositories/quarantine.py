"""Quarantined fills: append-only."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import QuarantinedFill


class QuarantineRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, leader_id: UUID, raw: str, reason: str, received_at: datetime) -> None:
        await self.session.execute(
            insert(QuarantinedFill).values(
                leader_id=leader_id, raw=raw, reason=reason, received_at=received_at
            )
        )
