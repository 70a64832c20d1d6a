"""The ASGI application: routers, lifespan, error shapes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.api import (
    accounts,
    dashboard,
    dashboard_status,
    followers,
    health,
    instruments,
    leaders,
    orders,
    replay,
    subscriptions,
)
from app.api.limits import AbuseLimiter, BodySizeLimit, OriginCheck, RateLimit
from app.dashboard.routes import mount_dashboard
from app.feed import ws as feed_ws
from app.ingest import push
from app.logging import adopt_server_loggers, configure_logging
from app.runtime import Runtime
from app.settings import Settings, get_settings


async def validation_error(_request: Request, exc: Exception) -> JSONResponse:
    """422 naming each offending field, without echoing the submitted values: a client that
    put a secret in the wrong field must not get it back in an error (or in a proxy's log)."""
    assert isinstance(exc, RequestValidationError)
    detail = []
    for error in exc.errors():
        item = {
            "type": error.get("type"),
            "loc": list(error.get("loc", ())),
            "msg": error.get("msg"),
        }
        if "ctx" in error:  # the rule broken (a bound, a pattern, a parse error), not the value
            item["ctx"] = jsonable_encoder(error["ctx"])
        detail.append(item)
    return JSONResponse({"detail": detail}, status_code=422)


def create_app(
    settings: Settings | None = None,
    beside: Callable[[Runtime], Coroutine[Any, Any, None]] | None = None,
) -> FastAPI:
    """The app; ``beside`` runs next to the runtime once it has started (the CLI's demo)."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime(settings)
        app.state.runtime = runtime
        await runtime.start()
        if beside is not None:
            runtime.run_beside(getattr(beside, "__name__", "beside"), beside)
        # SIGTERM drains the fill intake before uvicorn closes the sockets (app/shutdown.py).
        runtime.drain.install_signal_handlers()
        adopt_server_loggers()  # uvicorn has configured its loggers by now: JSON lines too
        try:
            yield
        finally:
            runtime.drain.restore_signal_handlers()
            await runtime.stop()

    app = FastAPI(
        title="Copytrade",
        version="0.1.0",
        description="Leader fills in, proportional follower orders out.",
        lifespan=lifespan,
    )
    app.add_exception_handler(RequestValidationError, validation_error)
    # Every role answers health, readiness and metrics; the rest follows COPYTRADE_ROLES.
    app.include_router(health.router)
    if settings.has_role("api"):
        for module in (
            leaders,
            instruments,
            followers,
            accounts,
            subscriptions,
            orders,
            replay,
            dashboard,
            dashboard_status,
            feed_ws,
        ):
            app.include_router(module.router)
        mount_dashboard(app)
    if settings.has_role("ingest"):
        app.include_router(push.router)
    # The last added runs first: refuse over-rate callers before reading their bodies.
    app.add_middleware(OriginCheck, allowed=settings.ws_allowed_origins)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    limiter = AbuseLimiter(
        settings.redis_url,
        settings.redis_cluster,
        settings.rate_limit_per_s,
        settings.rate_limit_burst,
        settings.unauth_rate_limit,
    )
    app.add_middleware(
        RateLimit, limiter=limiter, admin_token=settings.admin_token.get_secret_value()
    )
    return app
