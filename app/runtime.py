"""Everything the process holds for its lifetime, started and stopped in one place."""

from __future__ import annotations

import asyncio
from uuid import UUID

import structlog
from redis.asyncio import Redis
from sqlalchemy import text

from app.db.repositories.accounts import FollowerRepository, LeaderRepository
from app.db.session import UnitOfWork, make_engine, make_sessionmaker
from app.dispatch.enqueue import Enqueuer
from app.dispatch.relay import OutboxRelay
from app.dispatch.reports import ReportReader, ReportService
from app.dispatch.trim import StreamTrimmer
from app.feed.hub import FeedHub
from app.ingest.client import ListenerManager
from app.pipeline import Pipeline
from app.settings import Settings
from app.sizing.equity_cache import EquityCache, asyncpg_dsn

log = structlog.get_logger(__name__)


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings.database_url, settings.db_pool_size)
        self.sessionmaker = make_sessionmaker(self.engine)
        self.redis = Redis.from_url(
            settings.redis_url,
            decode_responses=False,
            socket_timeout=10,
            socket_connect_timeout=5,
            health_check_interval=15,
        )
        self.equity = EquityCache(
            self.sessionmaker, asyncpg_dsn(settings.database_url), settings.equity_resync_s
        )
        self.enqueuer = Enqueuer(self.redis, settings.dedupe_ttl_s)
        self.pipeline = Pipeline(
            self.sessionmaker, self.equity, self.enqueuer, settings.order_ttl_s
        )
        self.relay = OutboxRelay(
            self.sessionmaker, self.enqueuer, settings.relay_interval_s, settings.relay_min_age_s
        )
        self.feed = FeedHub(self.redis)
        self.trimmer = StreamTrimmer(
            self.sessionmaker, self.redis, settings.stream_retention_s, settings.trim_interval_s
        )
        self.reports = ReportService(self.redis)
        self.report_reader = ReportReader(
            self.sessionmaker,
            self.redis,
            self.reports,
            settings.report_block_ms,
            settings.report_claim_idle_ms,
            settings.report_refresh_s,
        )
        self.listeners = ListenerManager(
            self.pipeline,
            settings.reconnect_initial_s,
            settings.reconnect_max_s,
            settings.feed_ping_interval_s,
            settings.feed_idle_timeout_s,
            settings.max_frame_bytes,
        )
        self._background: list[asyncio.Task[None]] = []

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self.sessionmaker)

    async def start(self) -> None:
        await self.equity.start()
        await self.feed.start()
        await self.relay.start()
        await self.report_reader.start()
        await self.trimmer.start()
        async with self.sessionmaker() as session:
            leaders = await LeaderRepository(session).list_client_feeds()
        for leader in leaders:
            if leader.feed_kind == "generic" and leader.feed_url:
                self.listeners.ensure(leader.id, leader.feed_url)
        if self.settings.demo:
            from app.demo.run import start_demo

            self._background.append(asyncio.create_task(start_demo(self), name="demo"))
        log.info("runtime_started", client_feeds=len(self.listeners.listeners))

    async def stop(self) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        # Stop taking fills first, then let the relay and the feed go, then the connections.
        await self.listeners.stop_all()
        await self.relay.stop()
        await self.report_reader.stop()
        await self.trimmer.stop()
        await self.feed.stop()
        await self.equity.stop()
        await self.redis.aclose()
        await self.engine.dispose()

    async def follower_for_key_hash(self, key_hash: str) -> UUID | None:
        async with self.sessionmaker() as session:
            return await FollowerRepository(session).id_by_api_key_hash(key_hash)

    async def follower_exists(self, follower_id: UUID) -> bool:
        async with self.sessionmaker() as session:
            return await FollowerRepository(session).get(follower_id) is not None

    async def check_postgres(self) -> str | None:
        try:
            async with self.engine.connect() as conn:
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
