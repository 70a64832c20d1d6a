"""Everything the process holds for its lifetime, started and stopped in one place."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from functools import partial
from typing import Any
from uuid import UUID

import asyncpg
import structlog
from redis.asyncio import Redis
from sqlalchemy import text

from app import heap
from app.db.repositories.accounts import FollowerRepository
from app.db.session import PgTimeouts, UnitOfWork, make_engine, make_sessionmaker
from app.db.small_pool import SmallPool
from app.dispatch.enqueue import Enqueuer
from app.dispatch.marker import DispatchMarker
from app.dispatch.relay import OutboxRelay
from app.dispatch.report_reader import ReportReader
from app.dispatch.reports import ReportService
from app.dispatch.trim import StreamTrimmer
from app.feed.hub import FeedHub
from app.feed.sockets import SocketRegistry
from app.metrics import AUTH_LOOKUPS
from app.pipeline import Pipeline
from app.redisconn import AnyRedis, connect_pubsub
from app.redisconn import connect as connect_redis
from app.security.crypto import CredentialCipher
from app.settings import Settings
from app.shutdown import Drain
from app.sizing.copies import PositionCopier
from app.sizing.engine import SizingEngine
from app.sizing.equity_cache import EquityCache, asyncpg_dsn
from app.venues.accounts import AccountManager, AccountsParams
from app.venues.drift import DriftReconciler
from app.venues.instruments import InstrumentRefresher
from app.venues.leaders import LeadersParams, ListenerManager

log = structlog.get_logger(__name__)
# Connections of the executors' Redis client: one per shared read of the accounts' order
# streams, and the executors' own commands (with exec_read_shard 1: one per account).
EXEC_REDIS_CONNECTIONS = 20_000


_HOT_SESSION = {
    "application_name": "copytrade-hot",
    # The hot statements' best plan never depends on their arguments, but with real table
    # statistics Postgres can estimate the generic plan of the fill statement dearer than a
    # custom one and re-plan it on every fill, a large part of a fill's commit (figures and
    # how to measure them: docs/measurements.md).
    "plan_cache_mode": "force_generic_plan",
}


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """Pool reset hook: our connections keep no session state worth a RESET round trip."""


_json_decode = partial(json.loads, parse_float=Decimal)


async def _json_codecs(conn: asyncpg.Connection) -> None:
    """Read jsonb columns as Python values (asyncpg's default is the JSON text); numbers with
    a fraction or an exponent as Decimal, never float: they are amounts and limits."""
    await conn.set_type_codec(
        "jsonb", encoder=json.dumps, decoder=_json_decode, schema="pg_catalog"
    )


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.drain = Drain(settings.shutdown_grace_s)
        timeouts = PgTimeouts(
            statement_ms=settings.db_statement_timeout_ms,
            lock_ms=settings.db_lock_timeout_ms,
            idle_in_transaction_ms=settings.db_idle_in_transaction_timeout_ms,
            command_s=settings.db_command_timeout_s,
        )
        self.db_engine = make_engine(settings.database_url, settings.db_pool_size, timeouts)
        self.sessionmaker = make_sessionmaker(self.db_engine)
        self.redis: AnyRedis = connect_redis(settings.redis_url, settings.redis_cluster)
        # Pub/sub (the order feed, revocations) on one plain connection, cluster or not.
        self.pubsub_redis = (
            self.redis if isinstance(self.redis, Redis) else connect_pubsub(settings.redis_url)
        )
        self.equity = EquityCache(
            self.sessionmaker,
            asyncpg_dsn(settings.database_url),
            settings.equity_resync_s,
            timeouts.connect_args(application_name="copytrade-listen"),
        )
        self.enqueuer = Enqueuer(self.redis, settings.dedupe_ttl_s)
        # The hot path talks to Postgres on raw asyncpg: no ORM, no reset round trip on release.
        dsn = asyncpg_dsn(settings.database_url)
        hot = timeouts.connect_args(**_HOT_SESSION)
        self.pg = asyncpg.create_pool(
            dsn,
            min_size=2,
            max_size=settings.db_pool_size,
            reset=_keep_session,
            init=_json_codecs,
            **hot,
        )
        # The fill statement itself: a small pool of its own, one connection per fill sized at once.
        self.fill_pool = SmallPool(lambda: asyncpg.connect(dsn, **hot), settings.fill_concurrency)
        self.sizing = SizingEngine(
            self.pg,
            self.fill_pool,
            self.equity,
            settings.order_ttl_s,
            book_idle_s=settings.book_idle_s,
            vector=settings.vector_sizing,
        )
        self.sizing.prepare = self.enqueuer.prepare
        self.equity.on_change(self._on_change)
        self.marker = DispatchMarker(self.pg)
        self.pipeline = Pipeline(
            self.sizing,
            self.equity,
            self.enqueuer,
            self.marker,
            self.sessionmaker,
            settings.dispatch_timeout_s,
            settings.fill_concurrency,
        )
        self.copier = PositionCopier(self.sessionmaker, self.pipeline)
        self.relay = OutboxRelay(
            self.sessionmaker,
            self.enqueuer,
            settings.relay_interval_s,
            settings.relay_min_age_s,
            timeout_s=settings.relay_timeout_s,
            jobs=self.copier,
        )
        self.feed = FeedHub(self.pubsub_redis, settings.feed_queue_bytes)
        self.sockets = SocketRegistry(self.pubsub_redis)
        self.trimmer = StreamTrimmer(
            self.sessionmaker, self.redis, settings.stream_retention_s, settings.trim_interval_s
        )
        self.reports = ReportService(self.redis, self.sizing.invalidate)
        self.report_reader = ReportReader(
            self.sessionmaker,
            self.redis,
            self.reports,
            settings.report_block_ms,
            settings.report_claim_idle_ms,
            settings.report_refresh_s,
            settings.report_attempts,
        )
        self.cipher = (
            CredentialCipher.from_setting(settings.credentials_key.get_secret_value())
            if settings.credentials_key
            else None
        )
        self.listeners = ListenerManager(
            self.pipeline, self.sessionmaker, LeadersParams.from_settings(settings), self.cipher
        )
        # Each venue's instrument rules; run by ingest processes (sizing's), and the hook an
        # executor calls when a venue refuses an order for precision or minimums.
        self.instruments = InstrumentRefresher(
            self.sessionmaker,
            settings.instrument_venues,
            {str(venue): url for venue, url in settings.instrument_urls.items()},
            settings.instrument_refresh_s,
            settings.instrument_min_refresh_s,
            settings.venue_rest_timeout_s,
        )
        # The execute role: an executor per follower account this instance leases. Their
        # shared reads block holding a connection each: a client of their own, so that they
        # never starve the rest of the service's pool.
        self.exec_redis: AnyRedis = connect_redis(
            settings.redis_url, settings.redis_cluster, max_connections=EXEC_REDIS_CONNECTIONS
        )
        self.accounts = AccountManager(
            self.exec_redis,
            self.sessionmaker,
            self.pipeline,
            AccountsParams.from_settings(settings),
            self.cipher,
            self.listeners.me,
            self._rules_refused,
            DriftReconciler(self.sessionmaker, self.pipeline, self.redis),
        )
        self._background: list[asyncio.Task[None]] = []
        self._opened = False

    def _rules_refused(self, venue: str) -> None:
        """A venue refused an order for its precision or minimums: reload its rules (only a
        venue whose rules this service loads at all)."""
        if venue in self.instruments.venues:
            self.instruments.request_refresh(venue)

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self.sessionmaker)

    def _on_change(self, kind: str, key: str) -> None:
        if kind == "leader":
            self.sizing.invalidate(UUID(key))
        elif kind == "instrument":
            self.sizing.invalidate_instruments()
        else:  # "resync": we may have missed notifications
            self.sizing.invalidate_all()

    async def open(self) -> None:
        """Open the connection pools (start() does it too): enough to process fills."""
        if not self._opened:
            await self.pg
            self._opened = True

    async def start(self) -> None:
        await self.open()
        await self.marker.start()
        await self.equity.start()
        await self.feed.start()
        await self.sockets.start()
        # Roles (COPYTRADE_ROLES): the background work each kind of process owns.
        if self.settings.has_role("dispatch"):
            await self.relay.start()
            await self.report_reader.start()
            await self.trimmer.start()
        if self.settings.has_role("ingest"):
            self.listeners.start()
            self.instruments.start()
        if self.settings.has_role("execute"):
            self.accounts.start()
        heap.settle()  # the equity cache and the settings are loaded: out of the collector's way
        log.info("runtime_started", roles=self.settings.roles, instance=self.listeners.me)

    def run_beside(self, name: str, work: Callable[[Runtime], Coroutine[Any, Any, None]]) -> None:
        """Run ``work(self)`` in the background until the runtime stops (the demo does)."""
        self._background.append(asyncio.create_task(work(self), name=name))

    async def stop(self) -> None:
        self.drain.begin()  # /readyz says so, and no push socket takes another fill
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        # Stop taking fills first, then let the relay and the feed go, then the connections.
        await self.listeners.stop_all()
        await self.accounts.stop_all()
        await self.instruments.stop()
        await self.relay.stop()
        await self.report_reader.stop()
        await self.trimmer.stop()
        await self.marker.stop()
        await self.feed.stop()
        await self.sockets.stop()
        await self.equity.stop()
        await self.redis.aclose()
        await self.exec_redis.aclose()
        if self.pubsub_redis is not self.redis:
            await self.pubsub_redis.aclose()
        if self._opened:
            await self.fill_pool.close()
            await self.pg.close()
        await self.db_engine.dispose()
        log.info("runtime_stopped")

    async def follower_for_key_hash(self, key_hash: str) -> UUID | None:
        AUTH_LOOKUPS.inc()
        async with self.sessionmaker() as session:
            return await FollowerRepository(session).id_by_api_key_hash(key_hash)

    async def follower_exists(self, follower_id: UUID) -> bool:
        async with self.sessionmaker() as session:
            return await FollowerRepository(session).get(follower_id) is not None

    async def check_postgres(self) -> str | None:
        try:
            async with self.db_engine.connect() as conn:
                await asyncio.wait_for(conn.execute(text("SELECT 1")), timeout=2)
        except Exception as exc:
            return f"{type(exc).__name__}"
        return None

    async def check_redis(self) -> str | None:
        try:
            await asyncio.wait_for(self.redis.ping(), timeout=2)
        except Exception as exc:
            return f"{type(exc).__name__}"
        return None
