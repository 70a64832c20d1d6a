"""The lease loop: which leaders (``leaders.py``) and which accounts (``accounts.py``) this
instance runs, out of all instances that run them.

Every heartbeat, one round in one transaction (``app.db.repositories.leases``): renew this
instance's leases, give up those no longer wanted and the surplus over a fair share (so that
work spreads as instances join), and claim expired or unowned leases up to the share. Then,
after the commit, stop what this instance lost and start what it won. An instance that dies
stops renewing; its leases expire after ``ttl_s`` and the others take its work over. An
instance that cannot reach Postgres stops its own work before its leases can expire, so two
owners overlap only within one lease period; a worker that must never act alongside the next
owner (an executor sending orders) checks its :class:`Hold` before each act instead, which
ends before the lease can expire however late the rounds run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Generic, Protocol, TypeVar
from uuid import UUID

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.repositories.leases import LeaseKind, LeaseRepository
from app.db.session import UnitOfWork
from app.loops import Backoff, SupervisedTask
from app.security.crypto import Credential, CredentialCipher

if TYPE_CHECKING:
    from app.settings import Settings

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class LeaseParams:
    ttl_s: float
    heartbeat_s: float
    # The first retry after a failed round (then backing off up to the heartbeat).
    retry_initial_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> LeaseParams:
        return cls(settings.lease_ttl_s, settings.lease_heartbeat_s, settings.reconnect_initial_s)


class Worker(Protocol):
    """What runs under a lease (a listener, an executor)."""

    async def stop(self) -> None: ...

    @property
    def alive(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Held:
    """What one round leaves this instance with: ``keep`` is every lease it holds now,
    ``renewed`` those it held already before the round."""

    keep: set[UUID]
    renewed: set[UUID]


class Hold:
    """A worker's hold on its lease, as its instance knows it: the ``time.monotonic()`` until
    which the lease is surely still this instance's. Each round that renews the lease moves
    it on (renewed at the round's start at the latest, it cannot expire before ``ttl_s``
    later; the hold ends a margin before that); a round that fails or runs late moves it no
    more, and stopping the worker ends it at once. A worker acts on its lease (an executor
    sends an order) only while its hold is valid, checked at the last moment: another
    instance can take the lease only once it expired, after the hold ended. A new worker
    for the same key gets a new hold: an old one, being stopped, never sees it renewed."""

    def __init__(self, until: float) -> None:
        self.until = until
        self._moved = asyncio.Event()

    @property
    def valid(self) -> bool:
        return time.monotonic() < self.until

    def renew(self, until: float) -> None:
        self.until = until
        self._moved.set()

    def end(self) -> None:
        self.until = float("-inf")
        self._moved.set()

    async def wait(self) -> None:
        """Return once the hold is valid (now, or after the next round renews it). A hold
        that ended is never renewed: its worker waits until it is stopped."""
        while not self.valid:
            self._moved.clear()
            await self._moved.wait()


W = TypeVar("W", bound=Worker)
P = TypeVar("P")


class LeaseKeeper(ABC, Generic[W, P]):
    """One lease loop; a subclass says what is wanted, and what to start and stop.

    ``running`` holds the workers this instance runs, by leased id. ``_plan`` runs inside the
    round's transaction (reads that must agree with the leases won), ``_apply`` after its
    commit (starting and stopping work).
    """

    # What a worker is called in the logs ("listener_stopped").
    worker_name: ClassVar[str] = "worker"

    def __init__(
        self,
        kind: LeaseKind,
        sessionmaker: async_sessionmaker[AsyncSession],
        params: LeaseParams,
        me: str,
        cipher: CredentialCipher | None,
    ) -> None:
        self.me = me
        self.running: dict[UUID, W] = {}
        # The holds of the running workers that asked for one (``_hold``), by leased id.
        self._holds: dict[UUID, Hold] = {}
        self._kind = kind
        self._sessionmaker = sessionmaker
        self._leases = params
        self._cipher = cipher
        self._started = False
        # Whether a round ever ran here: only then may this instance hold leases to hand over.
        self._joined = False
        self._wake = asyncio.Event()
        # The heartbeat and API-triggered refreshes must not start the same worker twice.
        self._lock = asyncio.Lock()
        # Our leases are surely ours until this monotonic time (renewed minus a margin).
        self._valid_until = 0.0
        self._loop = SupervisedTask(
            kind.name, self._run, Backoff(params.retry_initial_s, params.heartbeat_s)
        )

    # -- what a kind of lease decides -------------------------------------------------------

    @abstractmethod
    async def _wanted(self, session: AsyncSession) -> tuple[int, Collection[UUID] | None]:
        """(how many leases there are to share, the ids wanted; None: every leased row is)."""

    @abstractmethod
    async def _plan(self, session: AsyncSession, held: Held) -> P:
        """What to start and stop, read in the round's transaction."""

    @abstractmethod
    async def _apply(self, plan: P) -> None:
        """Start and stop workers after the round has committed."""

    # -- the loop ---------------------------------------------------------------------------

    def start(self) -> None:
        self._started = True
        self._loop.start()

    @property
    def healthy(self) -> bool:
        # A process without the role has no lease loop to be healthy.
        looping = self._loop.alive or not self._started
        return looping and all(worker.alive for worker in self.running.values())

    async def refresh(self) -> None:
        """Reconcile now (something was added or removed here); if that fails, the next
        heartbeat does it. A process without the role runs nothing: its peers notice at their
        next heartbeat."""
        if not self._started:
            return
        try:
            await self.reconcile()
        except Exception as exc:
            log.warning("leases_refresh_deferred", kind=self._kind.name, error=repr(exc))
            self._wake.set()

    async def reconcile(self) -> None:
        """One round: renew, release, claim in one transaction; then stop and start."""
        async with self._lock:
            await self._reconcile()

    async def stop_all(self) -> None:
        """Stop every worker and hand the leases over at once."""
        await self._loop.stop()
        for key in list(self.running):
            await self._stop(key)
        if not self._joined:
            return
        try:
            async with UnitOfWork(self._sessionmaker) as uow:
                await LeaseRepository(uow.session, self._kind).leave(self.me)
                await uow.commit()
        except Exception as exc:
            # They expire on their own within ttl_s.
            log.warning("leases_not_released", kind=self._kind.name, error=repr(exc))

    async def _run(self, backoff: Backoff) -> None:
        while True:
            try:
                # Bounded: a Postgres that hangs must not keep us from noticing the leases lapse.
                async with asyncio.timeout(self._leases.ttl_s / 2):
                    await self.reconcile()
            except Exception:
                if time.monotonic() > self._valid_until and self.running:
                    # Our leases may be someone else's by now: stop rather than race them.
                    log.warning("leases_lost", kind=self._kind.name, running=len(self.running))
                    for key in list(self.running):
                        await self._stop(key)
                raise
            backoff.reset()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._leases.heartbeat_s):
                    await self._wake.wait()
            self._wake.clear()

    async def _reconcile(self) -> None:
        ttl = self._leases.ttl_s
        started = time.monotonic()
        self._joined = True
        async with UnitOfWork(self._sessionmaker) as uow:
            repo = LeaseRepository(uow.session, self._kind)
            live = await repo.heartbeat(self.me, ttl)
            total, wanted = await self._wanted(uow.session)
            renewed = await repo.renew(self.me, ttl)
            share = math.ceil(total / live)
            keep = renewed if wanted is None else renewed & set(wanted)
            release = sorted(renewed - keep)
            surplus = len(keep) - share
            if surplus > 0:
                # Which ones does not matter: whoever takes them picks up where they were.
                extra = sorted(keep, key=str)[:surplus]
                keep = keep - set(extra)
                release += extra
            await repo.release(self.me, release)
            won = await repo.claim(self.me, ttl, share - len(keep))
            keep = keep | (won if wanted is None else won & set(wanted))
            plan = await self._plan(uow.session, Held(keep, renewed))
            await uow.commit()
        # Renewed at `started` at the latest; stop a little before anyone may take over.
        self._valid_until = started + ttl * 0.8
        # Only a lease held since before the round keeps its worker's hold: a lease won
        # (even back) gets a new worker, with a new hold, once the old one has stopped.
        for key in keep & renewed:
            hold = self._holds.get(key)
            if hold is not None:
                hold.renew(self._valid_until)
        await self._apply(plan)

    def _hold(self, key: UUID) -> Hold:
        """A new hold for a worker about to start on ``key``, valid as long as the leases
        of the round that won it."""
        hold = Hold(self._valid_until)
        self._holds[key] = hold
        return hold

    async def _stop(self, key: UUID) -> None:
        hold = self._holds.pop(key, None)
        if hold is not None:
            hold.end()  # nothing more leaves, even while the worker winds down
        worker = self.running.pop(key, None)
        if worker is not None:
            await worker.stop()
            log.info(f"{self.worker_name}_stopped", id=str(key))

    def _credentials(self, secret: str) -> dict[str, Credential]:
        """Decrypt a stored credentials token into named ``Credential`` values."""
        if self._cipher is None:
            raise ValueError("COPYTRADE_CREDENTIALS_KEY is not set: cannot read the credentials")
        values = json.loads(self._cipher.decrypt(secret).reveal())
        return {name: Credential(value) for name, value in values.items()}
