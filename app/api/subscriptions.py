"""Subscriptions: a follower copying a leader, with its sizing settings. Admin or self."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from fastapi import APIRouter, HTTPException, status
from sqlalchemy.exc import IntegrityError

from app.api.auth import AdminDep, PrincipalDep
from app.api.decimal_json import DecimalRoute
from app.api.deps import RuntimeDep, UowDep
from app.api.followers import get_follower_or_404
from app.api.responses import errors
from app.api.schemas import (
    OpenPositionsCopy,
    SizingIn,
    SkippedSymbol,
    SubscriptionCreate,
    SubscriptionOut,
    SubscriptionPatch,
    SymbolMappingOut,
)
from app.api.views import LeaderPositionOut, SubscriptionPositionOut
from app.db.repositories.accounts import LeaderRepository
from app.db.repositories.copies import PositionCopyRepository
from app.db.repositories.follower_accounts import FollowerAccountRepository
from app.db.repositories.instruments import SymbolsSeenRepository, VenueInstrumentRepository
from app.db.repositories.positions import PositionRepository
from app.db.repositories.trading import SubscriptionRepository
from app.db.session import UnitOfWork
from app.db.tables import PositionCopy, Subscription
from app.domain.instruments import VENUES, Catalogue, map_symbol
from app.domain.planner import target_position
from app.runtime import Runtime
from app.sizing.books import settings_from_row
from app.sizing.venue_rules import follower_venue

router = APIRouter(tags=["subscriptions"], route_class=DecimalRoute)


def sizing_document(sizing: SizingIn) -> dict[str, object]:
    """The stored form: JSON-safe (decimals as strings), defaults left out."""
    document = sizing.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    if document.get("symbols") == {}:  # a symbols object holding only defaults is one too
        del document["symbols"]
    return document


def subscription_out(
    sub: Subscription,
    symbols: list[SymbolMappingOut] | None = None,
    copy: PositionCopy | None = None,
) -> SubscriptionOut:
    return SubscriptionOut(
        id=sub.id,
        leader_id=sub.leader_id,
        follower_id=sub.follower_id,
        multiplier=sub.multiplier,
        status=sub.status,
        status_reason=sub.status_reason,
        sizing=sub.sizing,
        created_at=sub.created_at,
        symbols=symbols or [],
        open_positions=None if copy is None else copy_out(copy),
    )


def copy_out(copy: PositionCopy) -> OpenPositionsCopy:
    report = copy.report or {}
    return OpenPositionsCopy(
        status="pending" if copy.done_at is None else "done",
        synced=report.get("synced", []),
        skipped=[SkippedSymbol(**item) for item in report.get("skipped", [])],
        attempts=copy.attempts,
        last_error=copy.last_error,
    )


async def symbol_mappings(
    uow: UnitOfWork, subs: list[Subscription]
) -> dict[UUID, list[SymbolMappingOut]]:
    """Per subscription whose follower's venue is known: each leader symbol seen, mapped."""
    placed: list[tuple[Subscription, str, str | None]] = []
    accounts = await FollowerAccountRepository(uow.session).venues(
        {sub.follower_id for sub in subs}
    )
    if not accounts and not any((sub.sizing.get("symbols") or {}).get("venue") for sub in subs):
        return {}
    catalogue = Catalogue(await VenueInstrumentRepository(uow.session).listed(VENUES))
    for sub in subs:
        venue, quote = follower_venue(sub.sizing, accounts.get(sub.follower_id), catalogue.venues)
        if venue is not None:
            placed.append((sub, venue, quote))
    if not placed:
        return {}
    seen = await SymbolsSeenRepository(uow.session).for_leaders(
        list({sub.leader_id for sub, _, _ in placed})
    )
    out: dict[UUID, list[SymbolMappingOut]] = {}
    for sub, venue, quote in placed:
        kind, symbols = seen.get(sub.leader_id, ("", []))
        overrides = (sub.sizing.get("symbols") or {}).get("map") or {}
        out[sub.id] = []
        for leader_symbol in symbols:
            mapped = map_symbol(
                leader_symbol, kind if kind in VENUES else None, venue, catalogue, overrides, quote
            )
            out[sub.id].append(
                SymbolMappingOut(
                    leader_symbol=leader_symbol,
                    symbol=mapped,
                    skip_reason=None if mapped else "symbol_not_listed",
                )
            )
    return out


def _refresh_sizing(uow: UnitOfWork, runtime: Runtime, leader_id: UUID) -> None:
    """The next fill must see the change: drop the leader's cached book after the commit.
    (Other instances hear of it through the subscription table's NOTIFY trigger.)"""

    async def _invalidate() -> None:
        runtime.sizing.invalidate(leader_id)

    uow.after_commit(_invalidate)


@router.post(
    "/v1/followers/{follower_id}/subscriptions",
    status_code=status.HTTP_201_CREATED,
    responses=errors(401, 404, 409),
)
async def subscribe(
    follower_id: UUID,
    body: SubscriptionCreate,
    principal: PrincipalDep,
    uow: UowDep,
    runtime: RuntimeDep,
) -> SubscriptionOut:
    await get_follower_or_404(uow, principal, follower_id)
    if await LeaderRepository(uow.session).get(body.leader_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="leader_id: leader not found")
    repo = SubscriptionRepository(uow.session)
    conflict = HTTPException(
        status.HTTP_409_CONFLICT, detail="leader_id: already subscribed to this leader"
    )
    if await repo.live_for_pair(follower_id, body.leader_id) is not None:
        raise conflict
    try:
        sub = await repo.add(
            follower_id, body.leader_id, body.multiplier, sizing_document(body.sizing)
        )
    except IntegrityError as exc:  # a concurrent request won the unique index
        raise conflict from exc
    _refresh_sizing(uow, runtime, body.leader_id)
    copy = None
    if body.copy_open_positions:
        # The job commits with the subscription: if running it now fails, the relay runs it.
        await PositionCopyRepository(uow.session).add(sub.id, body.leader_id)
        copy = PositionCopy(subscription_id=sub.id, attempts=0)
        subscription_id = sub.id

        async def _copy() -> None:
            await runtime.copier.run_one(subscription_id)

        uow.after_commit(_copy)
    return subscription_out(sub, (await symbol_mappings(uow, [sub])).get(sub.id), copy)


@router.get("/v1/followers/{follower_id}/subscriptions", responses=errors(401, 404))
async def list_subscriptions(
    follower_id: UUID, principal: PrincipalDep, uow: UowDep
) -> list[SubscriptionOut]:
    await get_follower_or_404(uow, principal, follower_id)
    subs = await SubscriptionRepository(uow.session).list_for_follower(follower_id)
    mappings = await symbol_mappings(uow, subs)
    copies = await PositionCopyRepository(uow.session).for_subscriptions([s.id for s in subs])
    return [subscription_out(sub, mappings.get(sub.id), copies.get(sub.id)) for sub in subs]


async def _subscription(uow: UnitOfWork, follower_id: UUID, sid: UUID) -> Subscription:
    sub = await SubscriptionRepository(uow.session).get(follower_id, sid)
    if sub is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="subscription not found")
    return sub


@router.patch(
    "/v1/followers/{follower_id}/subscriptions/{subscription_id}",
    responses=errors(401, 404, 422),
)
async def update_subscription(
    follower_id: UUID,
    subscription_id: UUID,
    body: SubscriptionPatch,
    principal: PrincipalDep,
    uow: UowDep,
    runtime: RuntimeDep,
) -> SubscriptionOut:
    """Change status, multiplier or sizing live: the next fill uses the new settings."""
    await get_follower_or_404(uow, principal, follower_id)
    sub = await _subscription(uow, follower_id, subscription_id)
    if body.status is not None:
        sub.status = body.status
        sub.status_reason = None
    if body.multiplier is not None:
        sub.multiplier = body.multiplier
    if body.sizing is not None:
        sub.sizing = sizing_document(body.sizing)
    try:
        settings_from_row(sub.multiplier, sub.status, sub.sizing)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from exc
    await uow.session.flush()
    await uow.session.refresh(sub)
    _refresh_sizing(uow, runtime, sub.leader_id)
    return subscription_out(sub, (await symbol_mappings(uow, [sub])).get(sub.id))


@router.delete(
    "/v1/followers/{follower_id}/subscriptions/{subscription_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(401, 404),
)
async def unsubscribe(
    follower_id: UUID,
    subscription_id: UUID,
    principal: PrincipalDep,
    uow: UowDep,
    runtime: RuntimeDep,
) -> None:
    await get_follower_or_404(uow, principal, follower_id)
    sub = await _subscription(uow, follower_id, subscription_id)
    # Kept as 'deleted' so the orders it produced still point at it.
    sub.status = "deleted"
    await uow.session.flush()
    _refresh_sizing(uow, runtime, sub.leader_id)


@router.get("/v1/followers/{follower_id}/positions", responses=errors(401, 404))
async def follower_positions(
    follower_id: UUID, principal: PrincipalDep, uow: UowDep, runtime: RuntimeDep
) -> list[SubscriptionPositionOut]:
    """Per subscription and symbol: the position sizing assumes, the target next to it (at
    the current equities), and what executors reported as filled."""
    await get_follower_or_404(uow, principal, follower_id)
    return await positions_of(uow, runtime, follower_id)


async def positions_of(
    uow: UnitOfWork, runtime: Runtime, follower_id: UUID
) -> list[SubscriptionPositionOut]:
    """The positions GET /v1/followers/{id}/positions shows (the dashboard's too)."""
    rows = await PositionRepository(uow.session).for_follower(follower_id)
    follower_eq = runtime.equity.follower(follower_id)
    targets: list[Decimal | None] = []
    for row in rows:
        leader_eq = runtime.equity.leader(row.leader_id)
        target = None
        if leader_eq and follower_eq and leader_eq.equity > 0 and follower_eq.equity > 0:
            target = target_position(
                row.leader_qty, leader_eq.equity, follower_eq.equity, row.multiplier
            )
        targets.append(target)
    # One venue position per account and symbol: set against all its subscriptions' targets.
    totals: dict[str, Decimal | None] = {}
    for row, target in zip(rows, targets, strict=True):
        total = totals.get(row.symbol, Decimal(0))
        totals[row.symbol] = None if total is None or target is None else total + target
    return [
        SubscriptionPositionOut(
            subscription_id=row.subscription_id,
            leader_id=row.leader_id,
            symbol=row.symbol,
            leader_symbol=row.leader_symbol,
            position=row.qty,
            target=target,
            leader_position=row.leader_qty,
            actual=row.actual,
            actual_source=row.actual_source,
            symbol_target=totals[row.symbol],
            drift_flagged=row.drift_flagged,
            drift_fraction=row.drift_fraction,
            adopted=row.adopted,
        )
        for row, target in zip(rows, targets, strict=True)
    ]


@router.get("/v1/leaders/{leader_id}/positions", responses=errors(401, 403, 404))
async def leader_positions(leader_id: UUID, _: AdminDep, uow: UowDep) -> list[LeaderPositionOut]:
    if await LeaderRepository(uow.session).get(leader_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="leader not found")
    rows = await PositionRepository(uow.session).for_leader(leader_id)
    return [LeaderPositionOut(symbol=symbol, qty=qty) for symbol, qty in rows]
