"""Which client-mode leader feeds run here: one listener per leader, leased in Postgres.

The lease rounds are ``leases.py``'s: a leader that was paused or deleted is no longer wanted
and is given up. A new owner's listener backfills from the last recorded fill, and fills are
deduplicated by the database, so a moment of double ownership costs a duplicate read.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol
from uuid import UUID

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.repositories.feeds import FEED_LEASES, FeedRepository, FeedSpec
from app.ingest.client import GenericFeedListener, ListenerState
from app.loops import Backoff
from app.metrics import LEASES_OWNED
from app.pipeline import Pipeline
from app.security.crypto import Credential, CredentialCipher
from app.venues.feed import http_client
from app.venues.leases import Held, LeaseKeeper, LeaseParams
from app.venues.listener import ListenerParams, VenueListener
from app.venues.registry import VENUE_KINDS, adapter_class

if TYPE_CHECKING:
    from app.settings import Settings

log = structlog.get_logger(__name__)


class Listener(Protocol):
    status: ListenerState

    def start(self) -> None: ...

    async def stop(self) -> None: ...

    @property
    def alive(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class LeadersParams:
    leases: LeaseParams
    # Venue feeds' listeners; generic feeds share their ping interval and backoff.
    venue: ListenerParams
    idle_timeout_s: float  # generic feeds (0: pings only)
    max_frame_bytes: int  # generic feeds
    rest_timeout_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> LeadersParams:
        return cls(
            leases=LeaseParams.from_settings(settings),
            venue=ListenerParams(
                ping_interval_s=settings.feed_ping_interval_s,
                idle_timeout_s=settings.venue_idle_timeout_s,
                max_frame_bytes=settings.venue_max_frame_bytes,
                backfill_overlap_s=settings.venue_backfill_overlap_s,
                equity_interval_s=settings.venue_equity_interval_s,
                retry_initial_s=settings.reconnect_initial_s,
                retry_max_s=settings.reconnect_max_s,
                resync_interval_s=settings.venue_resync_interval_s,
            ),
            idle_timeout_s=settings.feed_idle_timeout_s,
            max_frame_bytes=settings.max_frame_bytes,
            rest_timeout_s=settings.venue_rest_timeout_s,
        )


def instance_id() -> str:
    """Unique per process, readable in the lease table: host, pid and a random suffix."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True, slots=True)
class _Plan:
    keep: set[UUID]
    wanted: dict[UUID, FeedSpec]


class ListenerManager(LeaseKeeper[Listener, _Plan]):
    worker_name: ClassVar[str] = "listener"

    def __init__(
        self,
        pipeline: Pipeline,
        sessionmaker: async_sessionmaker[AsyncSession],
        params: LeadersParams,
        cipher: CredentialCipher | None,
        me: str | None = None,
    ) -> None:
        super().__init__(FEED_LEASES, sessionmaker, params.leases, me or instance_id(), cipher)
        self._pipeline = pipeline
        self._params = params
        # Leaders this instance owns but could not build a listener for (bad config, no key).
        self.broken: dict[UUID, ListenerState] = {}
        # What the current round found wanted (_wanted to _plan; rounds run one at a time).
        self._wanted_now: dict[UUID, FeedSpec] = {}

    @property
    def listeners(self) -> dict[UUID, Listener]:
        return self.running

    def state(self, leader_id: UUID) -> dict[str, object] | None:
        listener = self.running.get(leader_id)
        status = listener.status if listener else self.broken.get(leader_id)
        return {**status.as_dict(), "owner": self.me} if status else None

    async def _wanted(self, session: AsyncSession) -> tuple[int, Collection[UUID]]:
        self._wanted_now = await FeedRepository(session).wanted()
        return len(self._wanted_now), self._wanted_now.keys()

    async def _plan(self, session: AsyncSession, held: Held) -> _Plan:
        repo = FeedRepository(session)
        for leader_id in held.keep & self.running.keys():
            await repo.save_state(self.me, leader_id, self.running[leader_id].status.as_dict())
        return _Plan(held.keep, self._wanted_now)

    async def _apply(self, plan: _Plan) -> None:
        for leader_id in list(self.running):
            if leader_id not in plan.keep:
                await self._stop(leader_id)
        for leader_id in plan.keep - self.running.keys():
            self._start(plan.wanted[leader_id])
        for leader_id in list(self.broken):
            if leader_id not in plan.keep:
                del self.broken[leader_id]
        LEASES_OWNED.set(len(plan.keep))

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
        self.running[spec.leader_id] = listener
        listener.start()
        log.info("listener_started", leader_id=str(spec.leader_id), kind=spec.kind, owner=self.me)

    def _build(self, spec: FeedSpec) -> Listener:
        p = self._params
        if spec.kind == "generic":
            if not spec.url:
                raise ValueError("generic feed without a url")
            return GenericFeedListener(
                spec.leader_id,
                spec.url,
                self._pipeline,
                Backoff(p.venue.retry_initial_s, p.venue.retry_max_s),
                p.venue.ping_interval_s,
                p.idle_timeout_s,
                p.max_frame_bytes,
            )
        if spec.kind not in VENUE_KINDS:
            raise ValueError(f"unknown feed kind {spec.kind!r}")
        adapter = adapter_class(spec.kind)(
            spec.leader_id,
            spec.config,
            self._leader_credentials(spec),
            http_client(str(spec.config["rest_url"]), p.rest_timeout_s),
        )
        return VenueListener(adapter, self._pipeline, p.venue, floor=spec.floor_at)

    def _leader_credentials(self, spec: FeedSpec) -> dict[str, Credential]:
        return {} if spec.secret is None else self._credentials(spec.secret)
