"""Follower exchange accounts: credentials, status and live equity; which instance trades each
(leases, as the leader listeners have); the positions the venues report.

Executor leases are the rounds of ``leases.py``, held in the account row's ``owner`` and
``lease_expires_at``. Instances running ``execute`` heartbeat under ``exec:<instance id>`` in
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

from app.db.repositories.leases import LeaseKind
from app.db.tables import FollowerAccount, VenuePosition

EXEC_PREFIX = "exec:"


@dataclass(frozen=True, slots=True)
class AccountSpec:
    """What an executor is built from. ``secret`` is the encrypted credentials token."""

    follower_id: UUID
    kind: str
    config: dict[str, Any]
    secret: str


# A release frees the row at once. The claim's WHERE is re-checked on the row another round
# may have just updated: one winner only.
ACCOUNT_LEASES = LeaseKind(
    name="account_lease",
    instances=f"id LIKE '{EXEC_PREFIX}%'",
    renew=text(
        """
        UPDATE follower_account SET lease_expires_at = now() + make_interval(secs => :ttl)
         WHERE owner = :me
        RETURNING follower_id
        """
    ),
    claim=text(
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
    ),
    release=text(
        "UPDATE follower_account SET owner = NULL, lease_expires_at = NULL "
        "WHERE owner = :me AND follower_id = ANY(:ids)"
    ),
    release_all=text(
        "UPDATE follower_account SET owner = NULL, lease_expires_at = NULL WHERE owner = :me"
    ),
)
# An account's venue is its follower's default sizing venue (app.sizing.venue_rules): the books
# of the leaders it follows, cached on every instance, are reloaded at the commit. Not a
# trigger: lease renewals and equity updates touch the row far more often than its kind.
_BOOKS_CHANGED = text(
    """
    SELECT pg_notify('copytrade_changes',
                     json_build_object('kind', 'leader', 'id', leader_id)::text)
      FROM (SELECT DISTINCT leader_id FROM subscription WHERE follower_id = :f) s
    """
)


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
        await self.session.execute(_BOOKS_CHANGED, {"f": follower_id})
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
        removed = result.first() is not None
        if removed:
            await self.session.execute(_BOOKS_CHANGED, {"f": follower_id})
        return removed

    async def venues(self, follower_ids: set[UUID]) -> dict[UUID, str]:
        """Each follower's account venue (follower_account.kind), for those with an account."""
        if not follower_ids:
            return {}
        rows = await self.session.execute(
            select(FollowerAccount.follower_id, FollowerAccount.kind).where(
                FollowerAccount.follower_id.in_(follower_ids)
            )
        )
        return {follower_id: kind for follower_id, kind in rows.all()}

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
