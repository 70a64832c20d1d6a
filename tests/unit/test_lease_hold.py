"""A worker's lease hold moves on only with rounds that renew that very lease, and ends when
the worker stops: an executor that lost its account, or got it back as a new executor, never
sees its old hold renewed. The lease statements are replaced by a table in memory."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any
from uuid import UUID, uuid4

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories.follower_accounts import ACCOUNT_LEASES
from app.venues import leases
from app.venues.leases import Held, Hold, LeaseKeeper, LeaseParams


class Worker:
    def __init__(self, hold: Hold) -> None:
        self.hold = hold
        self.stopped = False

    async def stop(self) -> None:
        self.stopped = True

    @property
    def alive(self) -> bool:
        return not self.stopped


class Table:
    """Who holds each lease: this instance ("me") or another one."""

    def __init__(self) -> None:
        self.owner: dict[UUID, str] = {}


class Repo:
    def __init__(self, table: Table) -> None:
        self.table = table

    async def heartbeat(self, me: str, ttl_s: float) -> int:
        return 1

    async def renew(self, me: str, ttl_s: float) -> set[UUID]:
        return {key for key, owner in self.table.owner.items() if owner == me}

    async def release(self, me: str, ids: list[UUID]) -> None:
        return None

    async def claim(self, me: str, ttl_s: float, room: int) -> set[UUID]:
        won = {key for key, owner in self.table.owner.items() if owner == ""}
        for key in won:
            self.table.owner[key] = me
        return won


class Uow:
    session: Any = None

    def __init__(self, _sessionmaker: object) -> None:
        pass

    async def __aenter__(self) -> Uow:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def commit(self) -> None:
        return None


class Keeper(LeaseKeeper[Worker, Held]):
    def __init__(self, table: Table) -> None:
        super().__init__(
            ACCOUNT_LEASES,  # its statements are Repo's here
            None,  # type: ignore[arg-type]  # no Postgres: Uow
            LeaseParams(ttl_s=60, heartbeat_s=20, retry_initial_s=1),
            "me",
            None,
        )
        self.table = table

    async def _wanted(self, session: AsyncSession) -> tuple[int, Collection[UUID] | None]:
        return len(self.table.owner), None

    async def _plan(self, session: AsyncSession, held: Held) -> Held:
        return held

    async def _apply(self, plan: Held) -> None:
        for key in list(self.running):
            if key not in plan.keep & plan.renewed:
                await self._stop(key)
        for key in plan.keep - self.running.keys():
            self.running[key] = Worker(self._hold(key))


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Table:
    table = Table()
    monkeypatch.setattr(leases, "UnitOfWork", Uow)
    monkeypatch.setattr(leases, "LeaseRepository", lambda _session, _kind: Repo(table))
    return table


async def test_a_renewed_lease_moves_its_workers_hold_on(table: Table) -> None:
    # Arrange: a lease won, its worker started
    key = uuid4()
    table.owner[key] = ""
    keeper = Keeper(table)
    await keeper.reconcile()
    worker = keeper.running[key]
    first = worker.hold.until
    assert worker.hold.valid

    # Act
    await keeper.reconcile()

    # Assert
    assert keeper.running[key] is worker
    assert worker.hold.until > first


async def test_a_lost_lease_ends_its_workers_hold_and_a_lease_won_back_gets_a_new_one(
    table: Table,
) -> None:
    # Arrange: a worker whose hold lapsed (its round late) and waits for it
    key = uuid4()
    table.owner[key] = ""
    keeper = Keeper(table)
    await keeper.reconcile()
    old = keeper.running[key]
    old.hold.renew(0.0)
    waiting = asyncio.create_task(old.hold.wait())
    # meanwhile the lease expired, another instance took it and lost it again
    table.owner[key] = ""

    # Act: this instance wins it back
    await keeper.reconcile()

    # Assert: the old worker stopped with its hold ended, the new one holds a hold of its own
    new = keeper.running[key]
    assert old.stopped
    assert not old.hold.valid
    assert new is not old
    assert new.hold.valid
    assert not waiting.done()
    waiting.cancel()


async def test_a_lapsed_hold_is_valid_again_once_a_late_round_renews_the_lease(
    table: Table,
) -> None:
    # Arrange
    key = uuid4()
    table.owner[key] = ""
    keeper = Keeper(table)
    await keeper.reconcile()
    worker = keeper.running[key]
    worker.hold.renew(0.0)
    waiting = asyncio.create_task(worker.hold.wait())

    # Act: the late round renews the lease, still this instance's
    await keeper.reconcile()

    # Assert
    await waiting
    assert keeper.running[key] is worker
    assert worker.hold.valid
