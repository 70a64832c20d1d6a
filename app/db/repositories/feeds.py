"""Client-mode feeds: which leaders need a listener, who runs each (leases), where to resume.

A feed lease is a row per leader in ``feed_lease``, in the rounds of ``leases.py``. Should two
instances ever both run a leader, fills are deduplicated by (leader_id, fill_id): a moment of
double ownership costs a duplicate read, not an order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories.leases import LeaseKind, LeaseRepository


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """What a listener is built from. ``secret`` is the encrypted credentials token."""

    leader_id: UUID
    kind: str
    url: str | None
    config: dict[str, Any]
    secret: str | None
    # Never backfill before this: the leader's creation, or when its positions were seeded.
    floor_at: datetime


_WANTED = text(
    """
    SELECT id, feed_kind, feed_url, coalesce(feed_config, '{}'::jsonb) AS feed_config,
           feed_secret, coalesce(backfill_floor_at, created_at) AS floor_at
      FROM leader
     WHERE deleted_at IS NULL AND status = 'active' AND feed_kind <> 'push'
    """
)
# Executor instances heartbeat as 'exec:<id>' (follower_accounts.py): not listener instances.
# A release leaves the row to its owner until someone claims it (the claim resets its state).
# The claim's conditional DO UPDATE is re-checked against the committed row when another
# instance got there first, so only one wins.
FEED_LEASES = LeaseKind(
    name="feed_lease",
    instances="id NOT LIKE 'exec:%'",
    renew=text(
        """
        UPDATE feed_lease SET expires_at = now() + make_interval(secs => :ttl)
         WHERE owner = :me
        RETURNING leader_id
        """
    ),
    claim=text(
        """
        INSERT INTO feed_lease AS fl (leader_id, owner, expires_at)
        SELECT l.id, :me, now() + make_interval(secs => :ttl)
          FROM leader l LEFT JOIN feed_lease cur ON cur.leader_id = l.id
         WHERE l.deleted_at IS NULL AND l.status = 'active' AND l.feed_kind <> 'push'
           AND (cur.leader_id IS NULL OR cur.expires_at < now())
         ORDER BY l.id
         LIMIT :room
        ON CONFLICT (leader_id) DO UPDATE
            SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at, acquired_at = now(),
                state = NULL
          WHERE fl.expires_at < now()
        RETURNING leader_id
        """
    ),
    release=text(
        "UPDATE feed_lease SET expires_at = now() - interval '1 second' "
        "WHERE owner = :me AND leader_id = ANY(:ids)"
    ),
    release_all=text("DELETE FROM feed_lease WHERE owner = :me"),
    forget_dead=True,
)
_SAVE_STATE = text(
    "UPDATE feed_lease SET state = CAST(:state AS jsonb) WHERE owner = :me AND leader_id = :leader"
)
_STATE = text(
    "SELECT owner, state FROM feed_lease WHERE leader_id = :leader AND expires_at > now()"
)
_LAST_TRADE = text(
    """
    SELECT event_at FROM leader_fill
     WHERE leader_id = :leader AND kind = 'trade'
     ORDER BY event_at DESC LIMIT 1
    """
)
_HAS_POSITIONS = text(
    "SELECT EXISTS (SELECT 1 FROM leader_fill WHERE leader_id = :leader AND kind = 'trade') "
    "OR EXISTS (SELECT 1 FROM leader_position WHERE leader_id = :leader)"
)
_SEED_POSITION = text(
    """
    INSERT INTO leader_position (leader_id, symbol, qty, updated_at)
    VALUES (:leader, :symbol, :qty, now())
    ON CONFLICT (leader_id, symbol) DO NOTHING
    """
)


_SAVE_MARK = text(
    """
    INSERT INTO leader_mark (leader_id, symbol, price, as_of)
    VALUES (:leader, :symbol, :price, :as_of)
    ON CONFLICT (leader_id, symbol) DO UPDATE SET price = EXCLUDED.price, as_of = EXCLUDED.as_of
    """
)
_MARKS = text("SELECT symbol, price FROM leader_mark WHERE leader_id = :leader")
_HAS_FILL = text(
    "SELECT EXISTS (SELECT 1 FROM leader_fill WHERE leader_id = :leader AND fill_id = :fill)"
)
# A new sequence too: a book cached before the seed must not size the next fill.
_SET_FLOOR = text(
    "UPDATE leader SET backfill_floor_at = :at, book_seq = book_seq + 1 WHERE id = :leader"
)


class FeedRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def wanted(self) -> dict[UUID, FeedSpec]:
        """Every leader that should have a listener somewhere: active, client-mode, not deleted."""
        rows = await self.session.execute(_WANTED)
        return {
            row.id: FeedSpec(
                row.id,
                row.feed_kind,
                row.feed_url,
                row.feed_config,
                row.feed_secret,
                row.floor_at,
            )
            for row in rows
        }

    async def live_instances(self, ttl_s: float) -> int:
        """How many instances heartbeated within ``ttl_s`` (those running the ingest role)."""
        return await LeaseRepository(self.session, FEED_LEASES).live_instances(ttl_s)

    async def save_state(self, me: str, leader_id: UUID, state: dict[str, Any]) -> None:
        await self.session.execute(
            _SAVE_STATE, {"me": me, "leader": leader_id, "state": json.dumps(state)}
        )

    async def state(self, leader_id: UUID) -> tuple[str, dict[str, Any] | None] | None:
        """(owner, last reported listener state) of a live lease, for any instance to show."""
        row = (await self.session.execute(_STATE, {"leader": leader_id})).first()
        return (row.owner, row.state) if row else None

    async def last_trade_at(self, leader_id: UUID) -> datetime | None:
        """Event time of the leader's newest recorded trade: where a backfill resumes."""
        value: datetime | None = (
            await self.session.execute(_LAST_TRADE, {"leader": leader_id})
        ).scalar_one_or_none()
        return value

    async def seed_positions(
        self, leader_id: UUID, positions: dict[str, Decimal], as_of: datetime
    ) -> bool:
        """Take the venue's positions ``as_of`` as the leader's starting point, once: only while
        nothing is tracked for the leader yet. Fills up to ``as_of`` are in them, so backfills
        start there from now on. Return whether they were taken."""
        tracked = (await self.session.execute(_HAS_POSITIONS, {"leader": leader_id})).scalar_one()
        if tracked:
            return False
        # The leader's row before its positions: the fill statement's lock order.
        await self.session.execute(_SET_FLOOR, {"leader": leader_id, "at": as_of})
        for symbol, qty in positions.items():
            if qty != 0:
                await self.session.execute(
                    _SEED_POSITION, {"leader": leader_id, "symbol": symbol, "qty": qty}
                )
        return True

    async def save_marks(self, leader_id: UUID, marks: dict[str, Decimal], as_of: datetime) -> None:
        """Keep the venue's latest mark price of each position the leader holds."""
        for symbol, price in marks.items():
            if price > 0:
                await self.session.execute(
                    _SAVE_MARK,
                    {"leader": leader_id, "symbol": symbol, "price": price, "as_of": as_of},
                )

    async def marks(self, leader_id: UUID) -> dict[str, Decimal]:
        rows = await self.session.execute(_MARKS, {"leader": leader_id})
        return {row.symbol: row.price for row in rows}

    async def has_fill(self, leader_id: UUID, fill_id: str) -> bool:
        """Is this fill recorded already (a replay, after a restart, of one applied before)?"""
        found: bool = (
            await self.session.execute(_HAS_FILL, {"leader": leader_id, "fill": fill_id})
        ).scalar_one()
        return found
