"""Leases: which instance runs each of a set of things (leader listeners, account executors).

A lease is held per row: the owner renews it on every heartbeat, and anyone may take it once
it has expired. Postgres' row locks make the take-over a compare-and-set, so two instances
never both believe they won the same lease. Lease rounds of one kind take turns across
instances (an advisory lock held until commit): no two rounds lock lease rows in different
orders, so they never deadlock, and a fair share is computed on settled counts.

Each kind shares its leases over its own instances: every instance heartbeats in
``service_instance`` under an id that says its kind (``exec:`` prefixes the executors').
What differs between kinds is where a lease is stored (a row of its own, or columns of the
leased row), so each kind brings its claim and release statements; the round is the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession

_HEARTBEAT = text(
    """
    INSERT INTO service_instance (id, heartbeat_at) VALUES (:me, now())
    ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()
    """
)
_FORGET_DEAD = text(
    "DELETE FROM service_instance WHERE heartbeat_at < now() - make_interval(secs => 10 * :ttl)"
)
_LEAVE = text("DELETE FROM service_instance WHERE id = :me")


@dataclass(frozen=True, slots=True)
class LeaseKind:
    """One kind of lease: its round lock, its instances, and its lease statements.

    ``renew`` takes :me and :ttl and returns the ids renewed; ``claim`` takes :me, :ttl and
    :room and returns the ids won; ``release`` takes :me and :ids; ``release_all`` :me.
    """

    name: str
    # A SQL condition on service_instance.id: which instances share this kind's leases.
    instances: str
    renew: TextClause
    claim: TextClause
    release: TextClause
    release_all: TextClause
    # Whether this kind's rounds delete the rows of instances dead for ten lease periods (of
    # every kind): one kind doing it is enough, and two would wait on each other's deletes.
    forget_dead: bool = False

    @property
    def round_lock(self) -> TextClause:
        return text(f"SELECT pg_advisory_xact_lock(hashtext('copytrade.{self.name}'))")

    @property
    def live(self) -> TextClause:
        return text(
            f"SELECT count(*) FROM service_instance WHERE {self.instances} "
            "AND heartbeat_at > now() - make_interval(secs => :ttl)"
        )


class LeaseRepository:
    def __init__(self, session: AsyncSession, kind: LeaseKind) -> None:
        self.session = session
        self.kind = kind

    async def heartbeat(self, me: str, ttl_s: float) -> int:
        """Start a lease round (one at a time across instances, until commit) and mark this
        instance alive; return how many instances of the kind are alive (itself included)."""
        await self.session.execute(self.kind.round_lock)
        await self.session.execute(_HEARTBEAT, {"me": me})
        if self.kind.forget_dead:
            await self.session.execute(_FORGET_DEAD, {"ttl": ttl_s})
        return max(await self.live_instances(ttl_s), 1)

    async def live_instances(self, ttl_s: float) -> int:
        """How many instances of the kind heartbeated within ``ttl_s``."""
        live: int = (await self.session.execute(self.kind.live, {"ttl": ttl_s})).scalar_one()
        return live

    async def renew(self, me: str, ttl_s: float) -> set[UUID]:
        rows = await self.session.execute(self.kind.renew, {"me": me, "ttl": ttl_s})
        return {row[0] for row in rows}

    async def claim(self, me: str, ttl_s: float, room: int) -> set[UUID]:
        """Take up to ``room`` leases that are missing or expired."""
        if room <= 0:
            return set()
        rows = await self.session.execute(self.kind.claim, {"me": me, "ttl": ttl_s, "room": room})
        return {row[0] for row in rows}

    async def release(self, me: str, ids: list[UUID]) -> None:
        """Let others take these leases at once."""
        if ids:
            await self.session.execute(self.kind.release, {"me": me, "ids": ids})

    async def leave(self, me: str) -> None:
        """Drop every lease and the instance row: a clean shutdown hands over at once."""
        await self.session.execute(self.kind.round_lock)
        await self.session.execute(self.kind.release_all, {"me": me})
        await self.session.execute(_LEAVE, {"me": me})
