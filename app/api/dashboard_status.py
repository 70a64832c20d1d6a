"""The dashboard's view for the person on call: positions against targets, and health.

Scoped like the rest of /v1/dashboard: the admin sees a page of followers and the instance's
listeners; a follower key its own positions and the instance's readiness only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.auth import FollowerPrincipal, PrincipalDep
from app.api.dashboard import Limit, Offset, followers_in_view
from app.api.decimal_json import DecimalRoute
from app.api.deps import RuntimeDep, UowDep
from app.api.health import readiness
from app.api.responses import errors
from app.api.subscriptions import positions_of
from app.api.views import DashboardPositionOut, HealthOut, ListenerHealthOut
from app.db.repositories.feeds import FeedRepository

router = APIRouter(prefix="/v1/dashboard", tags=["dashboard"], route_class=DecimalRoute)


@router.get("/positions", responses=errors(401))
async def positions(
    principal: PrincipalDep,
    uow: UowDep,
    runtime: RuntimeDep,
    limit: Limit = 100,
    offset: Offset = 0,
    flat: Annotated[bool, Query(description="Include symbols where everything is 0.")] = False,
) -> list[DashboardPositionOut]:
    """Per follower and symbol: the tracked position, the target, the actual one and the
    drift (actual - target) where the actual is known: GET /v1/followers/{id}/positions for
    every follower in view."""
    out = []
    for follower in await followers_in_view(uow, principal, limit, offset):
        for row in await positions_of(uow, runtime, follower.id):
            document = row.model_dump()
            actual, target = document.get("actual"), document.get("target")
            if document.get("drift") is None and actual is not None and target is not None:
                document["drift"] = actual - target
            shown = DashboardPositionOut(**document, follower_id=follower.id)
            amounts = (shown.position, shown.target, shown.actual, shown.leader_position)
            if flat or any(value for value in amounts if value is not None):
                out.append(shown)
    return out


@router.get("/health", responses=errors(401))
async def health(principal: PrincipalDep, uow: UowDep, runtime: RuntimeDep) -> HealthOut:
    """This instance's readiness (as /readyz), draining, the outbox backlog; for the admin
    also its listeners (state, reconnects) and how many instances are alive."""
    ready, body = await readiness(runtime)
    admin = not isinstance(principal, FollowerPrincipal)
    listeners = []
    instances = None
    if admin:
        for leader_id, state in body["listeners"].items():
            listeners.append(
                ListenerHealthOut(
                    leader_id=leader_id,
                    state=state.get("state"),
                    alive=bool(state.get("alive")),
                    reconnects=state.get("reconnects"),
                    last_error=state.get("last_error"),
                )
            )
        instances = await FeedRepository(uow.session).live_instances(runtime.settings.lease_ttl_s)
    return HealthOut(
        status=body["status"],
        ready=ready,
        draining=body["draining"],
        postgres=body["postgres"],
        redis=body["redis"],
        outbox_backlog=body["outbox_backlog"],
        instances=instances,
        listeners=listeners,
    )
