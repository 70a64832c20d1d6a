"""Health, readiness and metrics: no auth, nothing secret."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.api.deps import RuntimeDep
from app.metrics import OUTBOX_BACKLOG

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={503: {"description": "Not ready: the body says which dependency is down"}},
)
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    """Postgres and Redis answer, and every leader listener task is running.

    A leader's upstream being down does not make the instance unready (other leaders still
    flow); its state is reported here and on GET /v1/leaders/{id}.
    """
    pg = await runtime.check_postgres()
    rd = await runtime.check_redis()
    listeners = {str(k): v.status.as_dict() for k, v in runtime.listeners.listeners.items()}
    ready = pg is None and rd is None and runtime.listeners.healthy
    body: dict[str, Any] = {
        "status": "ready" if ready else "not_ready",
        "postgres": pg or "ok",
        "redis": rd or "ok",
        "equity_listen": "ok" if runtime.equity.listening else "reconnecting",
        "outbox_backlog": runtime.relay.backlog,
        "listeners": listeners,
    }
    OUTBOX_BACKLOG.set(runtime.relay.backlog)
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
