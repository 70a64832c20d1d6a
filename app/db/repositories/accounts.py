"""Leaders, followers and their credentials."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.db.tables import Follower, Leader

_CLAIM_TRIM = text(
    """
    UPDATE follower SET trim_due_at = now() + make_interval(secs => :interval)
     WHERE id IN (SELECT id FROM follower
                   WHERE trim_due_at IS NULL OR trim_due_at <= now()
                   ORDER BY trim_due_at NULLS FIRST
                   LIMIT :limit
                   FOR UPDATE SKIP LOCKED)
    RETURNING id
    """
)


class LeaderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        name: str,
        feed_kind: str,
        feed_url: str | None,
        push_token_hash: str | None,
        feed_config: dict[str, Any] | None = None,
        feed_secret: str | None = None,
    ) -> Leader:
        leader = Leader(
            name=name,
            feed_kind=feed_kind,
            feed_url=feed_url,
            push_token_hash=push_token_hash,
            feed_config=feed_config,
            feed_secret=feed_secret,
        )
        self.session.add(leader)
        await self.session.flush()
        await self.session.refresh(leader)
        return leader

    async def get(self, leader_id: UUID) -> Leader | None:
        stmt = select(Leader).where(Leader.id == leader_id, Leader.deleted_at.is_(None))
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def replace_push_token_hash(self, leader_id: UUID, token_hash: str | None) -> str | None:
        """Set the leader's push token hash (None: revoked); return the one it replaces."""
        return await _replace_hash(
            self.session, Leader.push_token_hash, Leader.id, leader_id, token_hash
        )

    async def page(self, limit: int, offset: int) -> list[Leader]:
        stmt = (
            select(Leader)
            .where(Leader.deleted_at.is_(None))
            .order_by(Leader.created_at, Leader.id)
            .limit(limit)
            .offset(offset)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def encrypted_secrets(self) -> list[tuple[UUID, str]]:
        """Every stored (encrypted) exchange credential, deleted leaders' included, locked
        until the unit of work ends (a key rotation rewrites them all)."""
        stmt = (
            select(Leader.id, Leader.feed_secret)
            .where(Leader.feed_secret.is_not(None))
            .order_by(Leader.id)
            .with_for_update()
        )
        return [(row.id, row.feed_secret) for row in await self.session.execute(stmt)]

    async def set_secret(self, leader_id: UUID, token: str) -> None:
        await self.session.execute(
            update(Leader).where(Leader.id == leader_id).values(feed_secret=token)
        )

    async def set_status(self, leader_id: UUID, status: str) -> None:
        await self.session.execute(
            update(Leader).where(Leader.id == leader_id).values(status=status)
        )

    async def soft_delete(self, leader_id: UUID) -> bool:
        stmt = (
            update(Leader)
            .where(Leader.id == leader_id, Leader.deleted_at.is_(None))
            .values(deleted_at=datetime.now(UTC), push_token_hash=None)
        )
        result = await self.session.execute(stmt)
        return bool(result.rowcount)  # type: ignore[attr-defined]


class FollowerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, name: str, api_key_hash: str) -> Follower:
        follower = Follower(name=name, api_key_hash=api_key_hash)
        self.session.add(follower)
        await self.session.flush()
        await self.session.refresh(follower)
        return follower

    async def get(self, follower_id: UUID) -> Follower | None:
        return await self.session.get(Follower, follower_id)

    async def claim_trim_batch(self, limit: int, interval_s: float) -> list[UUID]:
        """Followers whose streams are due for trimming, now due again only after
        ``interval_s``: instances trimming at once each get their own followers (SKIP LOCKED
        passes over rows another instance is claiming)."""
        rows = await self.session.execute(_CLAIM_TRIM, {"limit": limit, "interval": interval_s})
        return [row[0] for row in rows]

    async def page(self, limit: int, offset: int) -> list[Follower]:
        stmt = (
            select(Follower).order_by(Follower.created_at, Follower.id).limit(limit).offset(offset)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def all_ids(self) -> list[UUID]:
        return list((await self.session.execute(select(Follower.id))).scalars())

    async def count(self) -> int:
        return int(
            (await self.session.execute(select(func.count()).select_from(Follower))).scalar_one()
        )

    async def id_page(self, after: UUID | None, limit: int) -> list[UUID]:
        """Up to ``limit`` follower ids in order, from just after ``after``."""
        stmt = select(Follower.id).order_by(Follower.id).limit(limit)
        if after is not None:
            stmt = stmt.where(Follower.id > after)
        return list((await self.session.execute(stmt)).scalars())

    async def id_by_api_key_hash(self, key_hash: str) -> UUID | None:
        stmt = select(Follower.id).where(Follower.api_key_hash == key_hash)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def replace_api_key_hash(self, follower_id: UUID, key_hash: str | None) -> str | None:
        """Set the follower's API key hash (None: revoked); return the one it replaces."""
        return await _replace_hash(
            self.session, Follower.api_key_hash, Follower.id, follower_id, key_hash
        )


async def _replace_hash(
    session: AsyncSession,
    column: InstrumentedAttribute[str | None],
    id_column: InstrumentedAttribute[UUID],
    row_id: UUID,
    new_hash: str | None,
) -> str | None:
    # The row lock makes concurrent rotations take turns, so each revokes the key it replaced.
    locked = select(column).where(id_column == row_id).with_for_update()
    old = (await session.execute(locked)).scalar_one_or_none()
    await session.execute(
        update(column.class_).where(id_column == row_id).values({column: new_hash})
    )
    return old
