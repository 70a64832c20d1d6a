"""What the dashboard page (GET /) reads besides the rest of /v1.

Scoped like every route: the admin sees every account (followers a page at a time), a follower
key only its own follower; leaders are admin only. Amounts are decimal strings.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query
from prometheus_client import Histogram
from pydantic import AwareDatetime

from app.api.auth import AdminDep, FollowerPrincipal, PrincipalDep, ensure_owner
from app.api.decimal_json import DecimalRoute
from app.api.deps import RuntimeDep, UowDep
from app.api.leaders import list_leaders
from app.api.orders import order_out
from app.api.responses import errors
from app.api.schemas import SubscriptionOut
from app.api.subscriptions import subscription_out
from app.api.views import (
    ExposureOut,
    FollowerOverview,
    HistogramBucketOut,
    HistogramOut,
    LeaderOverview,
    OrderOut,
    SessionOut,
)
from app.db.repositories.accounts import FollowerRepository
from app.db.repositories.dashboard import DashboardRepository, ExposureRow
from app.db.session import UnitOfWork
from app.db.tables import Follower
from app.domain.decimals import sizing_context
from app.ingest.frames import SYMBOL_PATTERN
from app.metrics import FILL_LATENCY, STAGE_LATENCY
from app.runtime import Runtime

router = APIRouter(prefix="/v1/dashboard", tags=["dashboard"], route_class=DecimalRoute)

Limit = Annotated[int, Query(ge=1, le=500, description="Followers per page (admin).")]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
RATIO_PLACES = Decimal("0.000001")


async def followers_in_view(
    uow: UnitOfWork, principal: PrincipalDep, limit: int, offset: int
) -> list[Follower]:
    """The followers this credential may see: a page of all (admin), or itself."""
    if isinstance(principal, FollowerPrincipal):
        follower = await FollowerRepository(uow.session).get(principal.follower_id)
        return [follower] if follower else []
    return await DashboardRepository(uow.session).followers_page(limit, offset)


@router.get("/session", responses=errors(401))
async def session(principal: PrincipalDep, uow: UowDep) -> SessionOut:
    """Who this credential is: the page shows the admin's view or one follower's."""
    if isinstance(principal, FollowerPrincipal):
        follower = await FollowerRepository(uow.session).get(principal.follower_id)
        return SessionOut(
            role="follower",
            follower_id=principal.follower_id,
            follower_name=follower.name if follower else None,
        )
    return SessionOut(role="admin")


@router.get("/leaders", responses=errors(401, 403))
async def leaders(
    admin: AdminDep, uow: UowDep, runtime: RuntimeDep, limit: Limit = 100, offset: Offset = 0
) -> list[LeaderOverview]:
    """Leaders as GET /v1/leaders shows them (with their listener state), plus equity, live
    subscriptions and the push sockets open on this instance."""
    shown = await list_leaders(admin, uow, runtime, limit, offset)
    repo = DashboardRepository(uow.session)
    ids = [leader.id for leader in shown]
    counts = await repo.live_subscriber_counts(ids)
    push_hashes = await repo.push_token_hashes(ids)
    out = []
    for leader in shown:
        reading = runtime.equity.leader(leader.id)
        token_hash = push_hashes.get(leader.id)
        out.append(
            LeaderOverview(
                **leader.model_dump(),
                equity=reading.equity if reading else None,
                equity_as_of=reading.as_of if reading else None,
                subscribers=counts.get(leader.id, 0),
                push_sockets=runtime.sockets.count(token_hash) if token_hash else 0,
            )
        )
    return out


@router.get("/followers", responses=errors(401))
async def followers(
    principal: PrincipalDep,
    uow: UowDep,
    runtime: RuntimeDep,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[FollowerOverview]:
    """Followers with their equity and live subscriptions (settings and status)."""
    shown = await followers_in_view(uow, principal, limit, offset)
    subs: dict[UUID, list[SubscriptionOut]] = defaultdict(list)
    for sub in await DashboardRepository(uow.session).subscriptions_of([f.id for f in shown]):
        subs[sub.follower_id].append(subscription_out(sub))
    out = []
    for follower in shown:
        reading = runtime.equity.follower(follower.id)
        out.append(
            FollowerOverview(
                id=follower.id,
                name=follower.name,
                created_at=follower.created_at,
                equity=reading.equity if reading else None,
                equity_as_of=reading.as_of if reading else None,
                subscriptions=subs[follower.id],
            )
        )
    return out


# The statuses the API shows, and the stored ones each stands for (app.domain.lifecycle).
SHOWN_STATUSES = {
    "dispatched": ("pending", "dispatched"),
    "accepted": ("accepted",),
    "partially_filled": ("partially_filled",),
    "filled": ("filled",),
    "rejected": ("rejected",),
    "expired": ("expired",),
    "skipped": ("skipped",),
}
ShownStatus = Literal[
    "dispatched", "accepted", "partially_filled", "filled", "rejected", "expired", "skipped"
]


@router.get("/orders", responses=errors(401, 404, 422))
async def recent_orders(
    principal: PrincipalDep,
    uow: UowDep,
    orders: Annotated[int, Query(ge=1, le=200, description="How many orders.")] = 50,
    limit: Limit = 100,
    offset: Offset = 0,
    follower_id: Annotated[UUID | None, Query(description="Only this follower's.")] = None,
    symbol: Annotated[str | None, Query(pattern=SYMBOL_PATTERN)] = None,
    status: ShownStatus | None = None,
    before_at: Annotated[
        AwareDatetime | None, Query(description="Page on: created_at of the last order shown.")
    ] = None,
    before_id: Annotated[
        str | None, Query(max_length=32, description="Page on: order_id of the last order shown.")
    ] = None,
) -> list[OrderOut]:
    """The newest orders of the followers in view (or of ``follower_id``), newest first,
    filtered by symbol and status; ``before_at`` and ``before_id`` (the last order of a page)
    give the next page."""
    if follower_id is not None:
        ensure_owner(principal, follower_id)
        shown_ids = [follower_id]
    else:
        shown_ids = [f.id for f in await followers_in_view(uow, principal, limit, offset)]
    if (before_at is None) != (before_id is None):
        raise HTTPException(422, detail="before_at, before_id: give both or neither")
    rows = await DashboardRepository(uow.session).recent_orders(
        shown_ids,
        orders,
        symbol=symbol,
        statuses=SHOWN_STATUSES[status] if status else None,
        before=(before_at, before_id) if before_at and before_id else None,
    )
    return [
        out
        for out in (order_out(order, fill) for order, fill in rows)
        # A stored "pending" is shown "dispatched" only once its fill is marked.
        if status is None or out.status == status
    ]


def _ratio(qty: Decimal, price: Decimal | None, equity: Decimal | None) -> Decimal | None:
    if price is None or equity is None or equity <= 0:
        return None
    ctx = sizing_context()
    return ctx.divide(ctx.multiply(qty, price), equity).quantize(RATIO_PLACES, context=ctx)


def _exposure(row: ExposureRow, runtime: Runtime) -> ExposureOut:
    leader_eq = runtime.equity.leader(row.leader_id)
    follower_eq = runtime.equity.follower(row.follower_id)
    leader_equity = leader_eq.equity if leader_eq else None
    follower_equity = follower_eq.equity if follower_eq else None
    leader_ratio = _ratio(row.leader_qty, row.mark_price, leader_equity)
    return ExposureOut(
        subscription_id=row.subscription_id,
        follower_id=row.follower_id,
        leader_id=row.leader_id,
        status=row.status,
        multiplier=row.multiplier,
        symbol=row.symbol,
        leader_symbol=row.leader_symbol,
        mark_price=row.mark_price,
        follower_position=row.qty,
        leader_position=row.leader_qty,
        follower_equity=follower_equity,
        leader_equity=leader_equity,
        follower_ratio=_ratio(row.qty, row.mark_price, follower_equity),
        leader_ratio=leader_ratio,
        target_ratio=None if leader_ratio is None else leader_ratio * row.multiplier,
    )


@router.get("/exposure", responses=errors(401))
async def exposure(
    principal: PrincipalDep,
    uow: UowDep,
    runtime: RuntimeDep,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[ExposureOut]:
    """Per follower, subscription and symbol: exposure / equity of both sides."""
    shown = await followers_in_view(uow, principal, limit, offset)
    rows = await DashboardRepository(uow.session).exposures([f.id for f in shown])
    return [_exposure(row, runtime) for row in rows]


def _histograms(metric: Histogram, label: str | None) -> list[HistogramOut]:
    """This process's histogram(s) of ``metric``, one per value of ``label``."""
    out = []
    for family in metric.collect():
        cumulative: dict[str | None, list[tuple[str, int]]] = defaultdict(list)
        sums: dict[str | None, float] = {}
        for sample in family.samples:
            key = sample.labels.get(label) if label else None
            if sample.name.endswith("_bucket"):
                cumulative[key].append((sample.labels["le"], int(sample.value)))
            elif sample.name.endswith("_sum"):
                sums[key] = sample.value
        for key, bounds in cumulative.items():
            buckets, below = [], 0
            for le, total in bounds:  # exposition order: ascending bounds, +Inf last
                buckets.append(HistogramBucketOut(le=le, count=total - below))
                below = total
            out.append(
                HistogramOut(
                    metric=family.name,
                    stage=key,
                    description=family.documentation,
                    count=below,
                    sum_seconds=sums.get(key, 0.0),
                    buckets=buckets,
                )
            )
    return out


@router.get("/latency", responses=errors(401))
async def latency(_: PrincipalDep) -> list[HistogramOut]:
    """This instance's latency histograms (the same numbers /metrics exposes): a fill received
    to its orders enqueued, and each stage of it."""
    return [*_histograms(FILL_LATENCY, None), *_histograms(STAGE_LATENCY, "stage")]
