"""Followers, their equity, subscriptions and orders: admin or the follower itself."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, HTTPException, status
from sqlalchemy.exc import IntegrityError

from app.api.auth import (
    FOLLOWER_KEY_PREFIX,
    AdminDep,
    PrincipalDep,
    ensure_owner,
    hash_secret,
    new_secret,
)
from app.api.decimal_json import DecimalRoute
from app.api.deps import RuntimeDep, UowDep
from app.api.schemas import (
    EquityIn,
    EquityOut,
    FollowerCreate,
    FollowerCreated,
    FollowerOut,
    SubscriptionCreate,
    SubscriptionOut,
    SubscriptionPatch,
)
from app.db.repositories.accounts import FollowerRepository, LeaderRepository
from app.db.repositories.trading import SubscriptionRepository
from app.db.session import UnitOfWork
from app.db.tables import Follower, Subscription

router = APIRouter(prefix="/v1/followers", tags=["followers"], route_class=DecimalRoute)


async def get_follower_or_404(
    uow: UnitOfWork, principal: PrincipalDep, follower_id: UUID
) -> Follower:
    ensure_owner(principal, follower_id)
    follower = await FollowerRepository(uow.session).get(follower_id)
    if follower is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="follower not found")
    return follower


def _subscription_out(sub: Subscription) -> SubscriptionOut:
    return SubscriptionOut(
        id=sub.id,
        leader_id=sub.leader_id,
        follower_id=sub.follower_id,
        multiplier=sub.multiplier,
        status=sub.status,
        created_at=sub.created_at,
    )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_follower(
    body: FollowerCreate, _: AdminDep, uow: UowDep, runtime: RuntimeDep
) -> FollowerCreated:
    api_key = new_secret(FOLLOWER_KEY_PREFIX)
    follower = await FollowerRepository(uow.session).add(body.name, hash_secret(api_key))
    follower_id = follower.id

    async def _read_reports() -> None:
        await runtime.report_reader.track(follower_id)

    uow.after_commit(_read_reports)
    return FollowerCreated(
        id=follower.id, name=follower.name, created_at=follower.created_at, api_key=api_key
    )


@router.get("/{follower_id}")
async def get_follower(follower_id: UUID, principal: PrincipalDep, uow: UowDep) -> FollowerOut:
    follower = await get_follower_or_404(uow, principal, follower_id)
    return FollowerOut(id=follower.id, name=follower.name, created_at=follower.created_at)


@router.post("/{follower_id}/equity", status_code=status.HTTP_201_CREATED)
async def add_follower_equity(
    follower_id: UUID, body: EquityIn, principal: PrincipalDep, uow: UowDep, runtime: RuntimeDep
) -> EquityOut:
    await get_follower_or_404(uow, principal, follower_id)
    reading = await runtime.pipeline.record_equity(
        uow, body.equity, body.as_of, follower_id=follower_id
    )
    return EquityOut(id=reading.snapshot_id, equity=reading.equity, as_of=reading.as_of)


@router.post("/{follower_id}/subscriptions", status_code=status.HTTP_201_CREATED)
async def subscribe(
    follower_id: UUID, body: SubscriptionCreate, principal: PrincipalDep, uow: UowDep
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
        sub = await repo.add(follower_id, body.leader_id, body.multiplier)
    except IntegrityError as exc:  # a concurrent request won the unique index
        raise conflict from exc
    return _subscription_out(sub)


@router.get("/{follower_id}/subscriptions")
async def list_subscriptions(
    follower_id: UUID, principal: PrincipalDep, uow: UowDep
) -> list[SubscriptionOut]:
    await get_follower_or_404(uow, principal, follower_id)
    subs = await SubscriptionRepository(uow.session).list_for_follower(follower_id)
    return [_subscription_out(sub) for sub in subs]


async def _subscription(uow: UnitOfWork, follower_id: UUID, sid: UUID) -> Subscription:
    sub = await SubscriptionRepository(uow.session).get(follower_id, sid)
    if sub is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="subscription not found")
    return sub


@router.patch("/{follower_id}/subscriptions/{subscription_id}")
async def update_subscription(
    follower_id: UUID,
    subscription_id: UUID,
    body: SubscriptionPatch,
    principal: PrincipalDep,
    uow: UowDep,
) -> SubscriptionOut:
    await get_follower_or_404(uow, principal, follower_id)
    sub = await _subscription(uow, follower_id, subscription_id)
    if body.status is not None:
        sub.status = body.status
    if body.multiplier is not None:
        sub.multiplier = body.multiplier
    await uow.session.flush()
    await uow.session.refresh(sub)
    return _subscription_out(sub)


@router.delete(
    "/{follower_id}/subscriptions/{subscription_id}", status_code=status.HTTP_204_NO_CONTENT
)
async def unsubscribe(
    follower_id: UUID, subscription_id: UUID, principal: PrincipalDep, uow: UowDep
) -> None:
    await get_follower_or_404(uow, principal, follower_id)
    sub = await _subscription(uow, follower_id, subscription_id)
    # Kept as 'deleted' so the orders it produced still point at it.
    sub.status = "deleted"
    await uow.session.flush()
