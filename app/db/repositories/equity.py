"""Equity snapshots: append-only, newest per account wins."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import EquitySnapshot
from app.domain.model import EquityReading

_NEWEST = """
    SELECT DISTINCT ON (leader_id, follower_id)
           id, leader_id, follower_id, equity, as_of
      FROM equity_snapshot
      {where}
  ORDER BY leader_id, follower_id, as_of DESC, id DESC
"""
# Newest per account in one pass over the (account, as_of DESC, id DESC) indexes.
_NEWEST_SQL = text(_NEWEST.format(where=""))
# The same among the rows inserted lately (the BRIN index on created_at finds them).
_NEWEST_RECENT_SQL = text(
    _NEWEST.format(where="WHERE created_at > now() - make_interval(secs => :within_s)")
)


class EquityRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        equity: Decimal,
        as_of: datetime | None,
        *,
        leader_id: UUID | None = None,
        follower_id: UUID | None = None,
    ) -> EquitySnapshot:
        values: dict[str, object] = {
            "leader_id": leader_id,
            "follower_id": follower_id,
            "equity": equity,
        }
        if as_of is not None:
            values["as_of"] = as_of
        stmt = insert(EquitySnapshot).values(**values).returning(EquitySnapshot)
        return (await self.session.execute(stmt)).scalar_one()

    async def newest_pages(
        self, page: int, within_s: float | None = None
    ) -> AsyncIterator[list[tuple[UUID | None, UUID | None, EquityReading]]]:
        """(leader_id, follower_id, reading) for every account's newest snapshot, or only
        among the snapshots inserted in the last ``within_s`` seconds, ``page`` at a time.

        Read through a server-side cursor: turning every account's row into a reading at once
        holds the event loop for as long as that takes (docs/measurements.md); a page at a
        time, it is free between pages (the caller's session holds the cursor's transaction)."""
        if within_s is None:
            statement, params = _NEWEST_SQL, {}
        else:
            statement, params = _NEWEST_RECENT_SQL, {"within_s": within_s}
        result = await self.session.stream(statement.execution_options(yield_per=page), params)
        async for rows in result.partitions(page):
            yield [
                (r.leader_id, r.follower_id, EquityReading(r.id, r.equity, r.as_of)) for r in rows
            ]
