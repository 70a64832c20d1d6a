"""copy_open_positions as a durable job: recorded with the subscription, run until done.

The subscribing request runs its job right after the commit; if that fails (the process dies,
Postgres or Redis is away), the job is still pending and the outbox relay runs it. Running a
job twice sends nothing twice: each symbol's sync event has a fixed id, so a second run finds
it recorded and reports it ``already_synced``.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.repositories.copies import PositionCopyRepository
from app.db.repositories.feeds import FeedRepository
from app.db.session import UnitOfWork
from app.db.tables import PositionCopy
from app.pipeline import Pipeline

log = structlog.get_logger(__name__)
# Jobs per relay round.
BATCH = 10
SYNCED = frozenset({"synced", "already_synced"})


def copy_report(symbols: dict[str, str]) -> dict[str, Any]:
    """The stored (and shown) report: symbols synced, and the others with their reason."""
    return {
        "synced": sorted(symbol for symbol, status in symbols.items() if status in SYNCED),
        "skipped": [
            {"symbol": symbol, "reason": status}
            for symbol, status in sorted(symbols.items())
            if status not in SYNCED
        ],
    }


class PositionCopier:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], pipeline: Pipeline) -> None:
        self._sessionmaker = sessionmaker
        self._pipeline = pipeline

    async def run_one(self, subscription_id: UUID) -> bool:
        """Run this subscription's job now, unless it is done or running elsewhere."""
        async with UnitOfWork(self._sessionmaker) as uow:
            job = await PositionCopyRepository(uow.session).lock(subscription_id)
            if job is None:
                return False
            await self._run(uow, job)
            await uow.commit()
        return True

    async def run_pending(self, older_than_s: float) -> int:
        """Run the jobs pending for longer than ``older_than_s``; return how many ran."""
        done = 0
        async with UnitOfWork(self._sessionmaker) as uow:
            jobs = await PositionCopyRepository(uow.session).pending(older_than_s, BATCH)
            for job in jobs:
                try:
                    await self._run(uow, job)
                except Exception as exc:
                    # Retried next round; its error is kept on the job for operators.
                    log.warning(
                        "position_copy_failed",
                        subscription_id=str(job.subscription_id),
                        error=repr(exc)[:300],
                    )
                    await PositionCopyRepository(uow.session).failed(job.subscription_id, repr(exc))
                    continue
                done += 1
            await uow.commit()
        return done

    async def _run(self, uow: UnitOfWork, job: PositionCopy) -> None:
        marks = await FeedRepository(uow.session).marks(job.leader_id)
        symbols = await self._pipeline.copy_open_positions(
            job.leader_id, job.subscription_id, marks
        )
        report = copy_report(symbols)
        await PositionCopyRepository(uow.session).finish(job, report)
        log.info(
            "position_copy_done",
            subscription_id=str(job.subscription_id),
            synced=report["synced"],
            skipped=report["skipped"],
        )
