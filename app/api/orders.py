"""A follower's orders: history, one order explained, executor reports, positions."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import Field

from app.api.auth import PrincipalDep
from app.api.decimal_json import DecimalRoute
from app.api.deps import RuntimeDep, UowDep
from app.api.followers import get_follower_or_404
from app.api.responses import errors
from app.api.schemas import NonNegative, Positive, Request
from app.api.views import FillFacts, FillOut, OrderDetail, OrderEventOut, OrderOut
from app.db.repositories.orders import LifecycleRepository, OrderRepository
from app.db.tables import FollowerOrder, LeaderFill
from app.dispatch.reports import UnknownOrder
from app.domain.drift import FOLLOWER_RESYNC
from app.domain.lifecycle import Report, ReportError, ReportStatus, shown_status
from app.executors.protocol.messages import sizing_document
from app.executors.protocol.reports import REASON_PATTERN

router = APIRouter(prefix="/v1/followers", tags=["orders"], route_class=DecimalRoute)
OrderId = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]


class ReportIn(Request):
    status: Literal["accepted", "partially_filled", "filled", "rejected", "expired"]
    filled_qty: NonNegative = Decimal(0)
    avg_price: Positive | None = None
    reason: Annotated[str, Field(max_length=200, pattern=REASON_PATTERN)] | None = None


# A sync event's reason, from its fill id's prefix (app.venues.resync, app.venues.drift).
SYNC_REASONS = (("resync:", "leader_resync"), (f"{FOLLOWER_RESYNC}:", FOLLOWER_RESYNC))


def fill_facts(fill: LeaderFill) -> dict[str, object]:
    """The venue's word on a fill, and for a sync event why it was made."""
    reason = None
    if fill.kind == "sync":
        reason = next(
            (why for prefix, why in SYNC_REASONS if fill.fill_id.startswith(prefix)),
            "copy_open_positions",
        )
    return {
        "liquidation": fill.liquidation,
        "reduce_only": fill.reduce_only,
        "fee": fill.fee,
        "fee_asset": fill.fee_asset,
        "kind": fill.kind,
        "reason": reason,
    }


def order_out(order: FollowerOrder, fill: LeaderFill) -> OrderOut:
    return OrderOut(
        order_id=order.id,
        follower_id=order.follower_id,
        leader_id=fill.leader_id,
        subscription_id=order.subscription_id,
        leader_fill_id=fill.fill_id,
        symbol=order.symbol,
        side=order.side,
        qty=order.qty,
        type=order.type,
        reduce_only=order.reduce_only,
        limit_price=order.limit_price,
        time_in_force=order.time_in_force,
        status=shown_status(order.status, fill.dispatched_at is not None),
        skip_reason=order.skip_reason,
        filled_qty=order.filled_qty,
        avg_price=order.avg_price,
        created_at=order.created_at,
        dispatched_at=None if order.status == "skipped" else fill.dispatched_at,
        valid_until=fill.valid_until or order.created_at,
        sizing=sizing_document(order, fill),
        leader_fill=FillFacts.model_validate(fill_facts(fill)),
    )


@router.get("/{follower_id}/orders", responses=errors(401, 404))
async def list_orders(
    follower_id: UUID,
    principal: PrincipalDep,
    uow: UowDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[OrderOut]:
    """Newest first, each with the sizing inputs that produced it."""
    await get_follower_or_404(uow, principal, follower_id)
    rows = await OrderRepository(uow.session).for_follower(follower_id, limit)
    return [order_out(order, fill) for order, fill in rows]


async def _order_detail(uow: UowDep, follower_id: UUID, order_id: str) -> OrderDetail:
    row = await OrderRepository(uow.session).get(follower_id, order_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="order not found")
    order, fill = row
    events = await LifecycleRepository(uow.session).events(order_id)
    return OrderDetail(
        **order_out(order, fill).model_dump(),
        fill=FillOut(
            fill_id=fill.fill_id,
            symbol=fill.symbol,
            side=fill.side,
            qty=fill.qty,
            price=fill.price,
            event_at=fill.event_at,
            received_at=fill.received_at,
            **fill_facts(fill),
        ),
        events=[
            OrderEventOut(
                status=e.status,
                filled_qty=e.filled_qty,
                avg_price=e.avg_price,
                reason=e.reason,
                at=e.created_at,
            )
            for e in events
        ],
    )


@router.get("/{follower_id}/orders/{order_id}", responses=errors(401, 404))
async def get_order(
    follower_id: UUID, order_id: OrderId, principal: PrincipalDep, uow: UowDep
) -> OrderDetail:
    """One order with its fill, sizing inputs and every status change."""
    await get_follower_or_404(uow, principal, follower_id)
    return await _order_detail(uow, follower_id, order_id)


@router.post("/{follower_id}/orders/{order_id}/reports", responses=errors(401, 404, 422))
async def report_order(
    follower_id: UUID,
    order_id: OrderId,
    body: ReportIn,
    principal: PrincipalDep,
    uow: UowDep,
    runtime: RuntimeDep,
) -> OrderDetail:
    """An executor's report: accepted, partially_filled, filled (cumulative qty), rejected,
    expired. Resending a report changes nothing."""
    await get_follower_or_404(uow, principal, follower_id)
    report = Report(ReportStatus(body.status), body.filled_qty, body.avg_price, body.reason)
    try:
        await runtime.reports.apply(uow, follower_id, order_id, report)
    except UnknownOrder as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="order not found") from exc
    except ReportError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from exc
    return await _order_detail(uow, follower_id, order_id)
