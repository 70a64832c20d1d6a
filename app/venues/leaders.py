"""Which client-mode leader feeds run here: one listener per leader, leased in Postgres.

Every heartbeat, each instance renews its leases, gives up leaders that were paused or
deleted (and its surplus over a fair share, so leaders spread as instances join), and takes
expired or unowned leases up to its share. An instance that dies stops renewing; its leases
expire after ``lease_ttl_s`` and the others take its leaders, whose listeners backfill from
the last recorded fill. An instance that cannot reach Postgres stops its own listeners before
its leases can expire, so two owners overlap only within one lease period, and even then
fills are deduplicated by the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import secrets
import socket
import time
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.repositories.feeds import FeedRepository, FeedSpec
from app.db.session import UnitOfWork
from app.ingest.client import GenericFeedListener, ListenerState
from app.loops import Backoff, SupervisedTask
from app.metrics import LEASES_OWNED
from app.pipeline import Pipeline
from app.security.crypto import Credential, CredentialCipher
from app.venues.listener import ListenerParams, VenueListener, http_client
from app.venues.registry import VENUE_KINDS, adapter_class

log = structlog.get_logger(__name__)


class Listener(Protocol):
    status: ListenerState

    def start(self) -> None: ...

    async def stop(self) -> None: ...

    @property
    def alive(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class ManagerParams:
    reconnect_initial_s: float
    reconnect_max_s: float
    ping_interval_s: float
    idle_timeout_s: float  # generic feeds (0: pings only)
    venue_idle_timeout_s: float
    max_frame_bytes: int
    backfill_overlap_s: float
    equity_interval_s: float
    rest_timeout_s: float
    lease_ttl_s: float
    lease_heartbeat_s: float
    venue_max_frame_bytes: int = 16 * 1024 * 1024
    venue_resync_interval_s: float = 30.0


def instance_id() -> str:
    """Unique per process, readable in the lease table: host, pid and a random suffix."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


class ListenerManager:
    def __init__(
        self,
        pipeline: Pipeline,
        sessionmaker: async_sessionmaker[AsyncSession],
        params: ManagerParams,
        cipher: CredentialCipher | None,
        me: str | None = None,
    ) -> None:
        self._pipeline = pipeline
        self._sessionmaker = sessionmaker
        self._params = params
        self._cipher = cipher
        self.me = me or instance_id()
        self.listeners: dict[UUID, Listener] = {}
        # Leaders this instance owns but could not build a listener for (bad config, no key).
        self.broken: dict[UUID, ListenerState] = {}
        self._wake = asyncio.Event()
        self._started = False
        # The heartbeat and API-triggered refreshes must not start the same listener twice.
        self._lock = asyncio.Lock()
        # Our leases are surely ours until this monotonic time (renewed minus a margin).
        self._valid_until = 0.0
        self._loop = SupervisedTask(
            "leases",
            self._run,
            Backoff(params.reconnect_initial_s, params.lease_heartbeat_s),
        )

    def start(self) -> None:
        self._started = True
        self._loop.start()

    async def refresh(self) -> None:
        """Reconcile now (a leader was added, paused, resumed or deleted here); if that fails,
        the next heartbeat does it. A process without the ingest role runs no listeners: its
        ingest peers notice at their next heartbeat."""
        if not self._started:
            return
        try:
            await self.reconcile()
        except Exception as exc:
            log.warning("listeners_refresh_deferred", error=repr(exc))
            self._wake.set()

    async def stop_all(self) -> None:
        """Stop every listener and hand the leases over at once."""
        await self._loop.stop()
        for leader_id in list(self.listeners):
            await self._stop(leader_id)
        try:
            async with UnitOfWork(self._sessionmaker) as uow:
                await FeedRepository(uow.session).leave(self.me)
                await uow.commit()
        except Exception as exc:
            # They expire on their own within lease_ttl_s.
            log.warning("leases_not_released", error=repr(exc))

    def state(self, leader_id: UUID) -> dict[str, object] | None:
        listener = self.listeners.get(leader_id)
        status = listener.status if listener else self.broken.get(leader_id)
        return {**status.as_dict(), "owner": self.me} if status else None

    @property
    def healthy(self) -> bool:
        # A process without the ingest role has no lease loop to be healthy.
        looping = self._loop.alive or not self._started
        return looping and all(listener.alive for listener in self.listeners.values())

    async def _run(self, backoff: Backoff) -> None:
        while True:
            try:
                # Bounded: a Postgres that hangs must not keep us from noticing the leases lapse.
                async with asyncio.timeout(self._params.lease_ttl_s / 2):
                    await self.reconcile()
            except Exception:
                if time.monotonic() > self._valid_until and self.listeners:
                    # Our leases may be someone else's by now: stop rather than race them.
                    log.warning("leases_lost", leaders=len(self.listeners))
                    for leader_id in list(self.listeners):
                        await self._stop(leader_id)
                raise
            backoff.reset()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._params.lease_heartbeat_s):
                    await self._wake.wait()
            self._wake.clear()

    async def reconcile(self) -> None:
        """One heartbeat: renew, release, claim in one transaction; then start and stop."""
        async with self._lock:
            await self._reconcile()

    async def _reconcile(self) -> None:
        ttl = self._params.lease_ttl_s
        started = time.monotonic()
        async with UnitOfWork(self._sessionmaker) as uow:
            repo = FeedRepository(uow.session)
            live = await repo.heartbeat(self.me, ttl)
            wanted = await repo.wanted()
            owned = await repo.renew(self.me, ttl)
            share = math.ceil(len(wanted) / live)
            keep = owned & wanted.keys()
            release = sorted(owned - keep)
            surplus = len(keep) - share
            if surplus > 0:
                # Which ones does not matter: whoever takes them backfills the gap.
                extra = sorted(keep, key=str)[:surplus]
                keep -= set(extra)
                release += extra
            await repo.release(self.me, release)
            keep |= await repo.claim(self.me, ttl, share - len(keep)) & wanted.keys()
            for leader_id in keep & self.listeners.keys():
                await repo.save_state(
                    self.me, leader_id, self.listeners[leader_id].status.as_dict()
                )
            await uow.commit()
        # Renewed at `started` at the latest; stop a little before anyone may take over.
        self._valid_until = started + ttl * 0.8
        for leader_id in list(self.listeners):
            if leader_id not in keep:
                await self._stop(leader_id)
        for leader_id in keep - self.listeners.keys():
            self._start(wanted[leader_id])
        for leader_id in list(self.broken):
            if leader_id not in keep:
                del self.broken[leader_id]
        LEASES_OWNED.set(len(keep))

    def _start(self, spec: FeedSpec) -> None:
        try:
            listener = self._build(spec)
        except Exception as exc:
            if spec.leader_id not in self.broken:
                log.error("listener_not_built", leader_id=str(spec.leader_id), error=str(exc))
            self.broken[spec.leader_id] = ListenerState(
                kind=spec.kind, state="error", last_error=str(exc)[:300]
            )
            return
        self.broken.pop(spec.leader_id, None)
        self.listeners[spec.leader_id] = listener
        listener.start()
        log.info("listener_started", leader_id=str(spec.leader_id), kind=spec.kind, owner=self.me)

    async def _stop(self, leader_id: UUID) -> None:
        listener = self.listeners.pop(leader_id, None)
        if listener is not None:
            await listener.stop()
            log.info("listener_stopped", leader_id=str(leader_id))

    def _build(self, spec: FeedSpec) -> Listener:
        p = self._params
        if spec.kind == "generic":
            if not spec.url:
                raise ValueError("generic feed without a url")
            return GenericFeedListener(
                spec.leader_id,
                spec.url,
                self._pipeline,
                Backoff(p.reconnect_initial_s, p.reconnect_max_s),
                p.ping_interval_s,
                p.idle_timeout_s,
                p.max_frame_bytes,
            )
        if spec.kind not in VENUE_KINDS:
            raise ValueError(f"unknown feed kind {spec.kind!r}")
        adapter = adapter_class(spec.kind)(
            spec.leader_id,
            spec.config,
            self._credentials(spec),
            http_client(str(spec.config["rest_url"]), p.rest_timeout_s),
        )
        return VenueListener(
            adapter,
            self._pipeline,
            ListenerParams(
                ping_interval_s=p.ping_interval_s,
                idle_timeout_s=p.venue_idle_timeout_s,
                max_frame_bytes=p.venue_max_frame_bytes,
                resync_interval_s=p.venue_resync_interval_s,
                backfill_overlap_s=p.backfill_overlap_s,
                equity_interval_s=p.equity_interval_s,
                retry_initial_s=p.reconnect_initial_s,
                retry_max_s=p.reconnect_max_s,
            ),
            floor=spec.floor_at,
        )

    def _credentials(self, spec: FeedSpec) -> dict[str, Credential]:
        if spec.secret is None:
            return {}
        if self._cipher is None:
            raise ValueError("COPYTRADE_CREDENTIALS_KEY is not set: cannot read the credentials")
        values = json.loads(self._cipher.decrypt(spec.secret).reveal())
        return {name: Credential(value) for name, value in values.items()}
