"""Health, readiness and metrics: no auth, nothing secret."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.api.deps import RuntimeDep
from app.metrics import DRAINING, OUTBOX_BACKLOG, READY
from app.runtime import Runtime

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


async def readiness(runtime: Runtime) -> tuple[bool, dict[str, Any]]:
    """Whether this instance is ready, and the details /readyz reports. Refreshes the gauges
    that say the same on /metrics, so an alert sees what the probe sees."""
    pg, rd = await asyncio.gather(runtime.check_postgres(), runtime.check_redis())
    listeners = {
        str(leader_id): {**listener.status.as_dict(), "alive": listener.alive}
        for leader_id, listener in runtime.listeners.listeners.items()
    }
    # Leaders this instance owns but cannot run (credentials unreadable, bad config): the
    # operator must see them; they do not make the instance unready (the others still flow).
    for leader_id, state in runtime.listeners.broken.items():
        listeners[str(leader_id)] = {**state.as_dict(), "alive": False}
    draining = runtime.drain.draining()
    ready = (
        pg is None
        and rd is None
        and runtime.listeners.healthy
        and runtime.accounts.healthy
        and not draining
    )
    body: dict[str, Any] = {
        "status": "ready" if ready else ("draining" if draining else "not_ready"),
        "postgres": pg or "ok",
        "redis": rd or "ok",
        "equity_listen": "ok" if runtime.equity.listening else "reconnecting",
        "outbox_backlog": runtime.relay.backlog,
        "listeners": listeners,
        # Follower accounts whose executor runs here (an account in error is still alive).
        "executors": {
            str(follower_id): {"status": e.status, "last_error": e.last_error, "alive": e.alive}
            for follower_id, e in runtime.accounts.executors.items()
        },
        "push_feeds": {leader: {"sockets": n} for leader, n in runtime.drain.sessions().items()},
        "draining": draining,
    }
    OUTBOX_BACKLOG.set(runtime.relay.backlog)
    READY.set(1 if ready else 0)
    DRAINING.set(1 if draining else 0)
    return ready, body


@router.get(
    "/readyz",
    responses={503: {"description": "Not ready: the body says which dependency is down"}},
)
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    """Postgres and Redis answer, every leader listener task is running, and the instance is
    not shutting down.

    A leader's upstream being down does not make the instance unready (other leaders still
    flow); its state is reported here and on GET /v1/leaders/{id}. While draining (after
    SIGTERM) the answer is 503 so that load balancers send new leader connections elsewhere.
    """
    ready, body = await readiness(runtime)
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics(runtime: RuntimeDep) -> Response:
    # A scrape checks readiness too (two pings), so copytrade_ready is never older than it.
    await readiness(runtime)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
