"""The ASGI application: routers, lifespan, error shapes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.api import followers, health, instruments, leaders, orders, subscriptions
from app.api.limits import BodySizeLimit, OriginCheck, RateLimit
from app.feed import ws as feed_ws
from app.ingest import push
from app.logging import configure_logging
from app.runtime import Runtime
from app.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime(settings)
        app.state.runtime = runtime
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title="Copytrade",
        version="0.1.0",
        description="Leader fills in, proportional follower orders out.",
        lifespan=lifespan,
    )
    for module in (
        health,
        leaders,
        instruments,
        followers,
        subscriptions,
        orders,
        push,
        feed_ws,
    ):
        app.include_router(module.router)
    # The last added runs first: refuse over-rate callers before reading their bodies.
    app.add_middleware(OriginCheck, allowed=settings.ws_allowed_origins)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RateLimit, rate=settings.rate_limit_per_s, burst=settings.rate_limit_burst)
    return app
