"""Follower exchange accounts: credentials, status and live equity; which instance trades each
(leases, as the leader listeners have); the positions the venues report.

Executor leases work like the listener leases of ``feeds.py``: a round at a time across
instances (an advisory lock), renewals by the owner, expired or unowned leases taken up to a
fair share. Instances running ``execute`` heartbeat under ``exec:<instance id>`` in
``service_instance`` so that each kind of lease shares over its own instances.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import FollowerAccount, VenuePosition

EXEC_PREFIX = "exec:"


@dataclass(frozen=True, slots=True)
class AccountSpec:
    """What an executor is built from. ``secret`` is the encrypted credentials token."""

    follower_id: UUID
    kind: str
    config: dict[str, Any]
    secret: str


_ROUND_LOCK = text("SELECT pg_advisory_xact_lock(hashtext('copytrade.account_lease'))")
_HEARTBEAT = text(
    """
    INSERT INTO service_instance (id, heartbeat_at) VALUES (:me, now())
    ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()
    """
)
_LIVE = text(
    "SELECT count(*) FROM service_instance "
    "WHERE id LIKE 'exec:%' AND heartbeat_at > now() - make_interval(secs => :ttl)"
)
_RENEW = text(
    """
    UPDATE follower_account SET lease_expires_at = now() + make_interval(secs => :ttl)
     WHERE owner = :me
    RETURNING follower_id
    """
)
# The WHERE is re-checked on the row another round may have just updated: one winner only.
_CLAIM = text(
    """
    UPDATE follower_account SET owner = :me,
           lease_expires_at = now() + make_interval(secs => :ttl)
     WHERE follower_id IN (
         SELECT follower_id FROM follower_account
          WHERE owner IS NULL OR lease_expires_at IS NULL OR lease_expires_at < now()
          ORDER BY follower_id LIMIT :room FOR UPDATE SKIP LOCKED)
       AND (owner IS NULL OR lease_expires_at IS NULL OR lease_expires_at < now())
    RETURNING follower_id
    """
)
_RELEASE = text(
    "UPDATE follower_account SET owner = NULL, lease_expires_at = NULL "
    "WHERE owner = :me AND follower_id = ANY(:ids)"
)
_RELEASE_ALL = text(
    "UPDATE follower_account SET owner = NULL, lease_expires_at = NULL WHERE owner = :me"
)
_LEAVE = text("DELETE FROM service_instance WHERE id = :me")


class FollowerAccountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, follower_id: UUID) -> FollowerAccount | None:
        return await self.session.get(FollowerAccount, follower_id)

    async def put(
        self, follower_id: UUID, kind: str, config: dict[str, Any], secret: str
    ) -> FollowerAccount:
        """Connect (or reconnect with new keys): status ``connecting``, and the lease freed so
        that the executor is rebuilt from the new credentials."""
        values = {
            "follower_id": follower_id,
            "kind": kind,
            "config": config,
            "secret": secret,
            "status": "connecting",
            "last_error": None,
            "owner": None,
            "lease_expires_at": None,
        }
        stmt = pg_insert(FollowerAccount).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["follower_id"],
            set_={
                **{k: stmt.excluded[k] for k in values if k != "follower_id"},
                "equity": None,
                "equity_at": None,
                "positions_at": None,
                "updated_at": text("now()"),
            },
        )
        await self.session.execute(stmt)
        await self.session.execute(
            delete(VenuePosition).where(VenuePosition.follower_id == follower_id)
        )
        account = await self.session.get(FollowerAccount, follower_id, populate_existing=True)
        assert account is not None
        return account

    async def remove(self, follower_id: UUID) -> bool:
        await self.session.execute(
            delete(VenuePosition).where(VenuePosition.follower_id == follower_id)
        )
        result = await self.session.execute(
            delete(FollowerAccount)
            .where(FollowerAccount.follower_id == follower_id)
            .returning(FollowerAccount.follower_id)
        )
        return result.first() is not None

    async def specs(self, follower_ids: set[UUID]) -> dict[UUID, AccountSpec]:
        if not follower_ids:
            return {}
        rows = await self.session.execute(
            select(FollowerAccount).where(FollowerAccount.follower_id.in_(follower_ids))
        )
        return {
            a.follower_id: AccountSpec(a.follower_id, a.kind, a.config, a.secret)
            for a in rows.scalars()
        }

    async def count(self) -> int:
        value: int = (
            await self.session.execute(text("SELECT count(*) FROM follower_account"))
        ).scalar_one()
        return value

    # -- leases -----------------------------------------------------------------------------

    async def heartbeat(self, me: str, ttl_s: float) -> int:
        """Start a lease round (one at a time, until commit), mark this executor instance
        alive; return how many are alive (itself included)."""
        await self.session.execute(_ROUND_LOCK)
        await self.session.execute(_HEARTBEAT, {"me": me})
        live: int = (await self.session.execute(_LIVE, {"ttl": ttl_s})).scalar_one()
        return max(live, 1)

    async def renew(self, me: str, ttl_s: float) -> set[UUID]:
        rows = await self.session.execute(_RENEW, {"me": me, "ttl": ttl_s})
        return {row[0] for row in rows}

    async def claim(self, me: str, ttl_s: float, room: int) -> set[UUID]:
        if room <= 0:
            return set()
        rows = await self.session.execute(_CLAIM, {"me": me, "ttl": ttl_s, "room": room})
        return {row[0] for row in rows}

    async def release(self, me: str, follower_ids: list[UUID]) -> None:
        if follower_ids:
            await self.session.execute(_RELEASE, {"me": me, "ids": follower_ids})

    async def leave(self, me: str) -> None:
        await self.session.execute(_ROUND_LOCK)
        await self.session.execute(_RELEASE_ALL, {"me": me})
        await self.session.execute(_LEAVE, {"me": me})

    # -- what the venue says ----------------------------------------------------------------

    async def set_status(
        self, follower_id: UUID, me: str, status: str, last_error: str | None
    ) -> None:
        """Record the executor's state; only while ``me`` holds the lease."""
        await self.session.execute(
            text(
                "UPDATE follower_account SET status = :status, last_error = :error, "
                "updated_at = now() WHERE follower_id = :f AND owner = :me"
            ),
            {"status": status, "error": last_error, "f": follower_id, "me": me},
        )

    async def record_equity(self, follower_id: UUID, equity: Decimal, at: datetime) -> None:
        await self.session.execute(
            text(
                "UPDATE follower_account SET equity = :equity, equity_at = :at, "
                "status = 'ready', last_error = NULL, updated_at = now() WHERE follower_id = :f"
            ),
            {"equity": equity, "at": at, "f": follower_id},
        )

    async def record_positions(
        self, follower_id: UUID, positions: dict[str, Decimal], at: datetime, *, full: bool
    ) -> None:
        """Store the venue's positions ``at``; ``full``: the whole account (symbols missing
        are flat), else only the symbols given (a push). An older reading never wins."""
        if full:
            await self.session.execute(
                delete(VenuePosition).where(
                    VenuePosition.follower_id == follower_id,
                    VenuePosition.read_at <= at,
                    VenuePosition.symbol.not_in(list(positions)),
                )
            )
            await self.session.execute(
                text("UPDATE follower_account SET positions_at = :at WHERE follower_id = :f"),
                {"at": at, "f": follower_id},
            )
        for symbol, qty in positions.items():
            stmt = pg_insert(VenuePosition).values(
                follower_id=follower_id, symbol=symbol, qty=qty, read_at=at
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=["follower_id", "symbol"],
                set_={"qty": stmt.excluded.qty, "read_at": stmt.excluded.read_at},
                where=VenuePosition.read_at <= stmt.excluded.read_at,
            )
            await self.session.execute(stmt)
