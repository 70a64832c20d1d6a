"""Followers, their equity, subscriptions and orders: admin or the follower itself."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, HTTPException, status

from app.api.auth import (
    FOLLOWER_KEY_PREFIX,
    AdminDep,
    PrincipalDep,
    ensure_owner,
    hash_secret,
    new_secret,
    revoke_after_commit,
)
from app.api.decimal_json import DecimalRoute
from app.api.deps import RuntimeDep, UowDep
from app.api.responses import errors
from app.api.schemas import (
    ApiKeyOut,
    EquityIn,
    EquityOut,
    FollowerCreate,
    FollowerCreated,
    FollowerOut,
)
from app.db.repositories.accounts import FollowerRepository
from app.db.session import UnitOfWork
from app.db.tables import Follower

router = APIRouter(prefix="/v1/followers", tags=["followers"], route_class=DecimalRoute)


async def get_follower_or_404(
    uow: UnitOfWork, principal: PrincipalDep, follower_id: UUID
) -> Follower:
    ensure_owner(principal, follower_id)
    follower = await FollowerRepository(uow.session).get(follower_id)
    if follower is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="follower not found")
    return follower


@router.post("", status_code=status.HTTP_201_CREATED, responses=errors(401, 403))
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


@router.get("/{follower_id}", responses=errors(401, 404))
async def get_follower(follower_id: UUID, principal: PrincipalDep, uow: UowDep) -> FollowerOut:
    follower = await get_follower_or_404(uow, principal, follower_id)
    return FollowerOut(id=follower.id, name=follower.name, created_at=follower.created_at)


@router.post(
    "/{follower_id}/equity", status_code=status.HTTP_201_CREATED, responses=errors(401, 404)
)
async def add_follower_equity(
    follower_id: UUID, body: EquityIn, principal: PrincipalDep, uow: UowDep, runtime: RuntimeDep
) -> EquityOut:
    await get_follower_or_404(uow, principal, follower_id)
    reading = await runtime.pipeline.record_equity(
        uow, body.equity, body.as_of, follower_id=follower_id
    )
    return EquityOut(id=reading.snapshot_id, equity=reading.equity, as_of=reading.as_of)


@router.post(
    "/{follower_id}/api-keys", status_code=status.HTTP_201_CREATED, responses=errors(401, 404)
)
async def rotate_api_key(
    follower_id: UUID, principal: PrincipalDep, uow: UowDep, runtime: RuntimeDep
) -> ApiKeyOut:
    """Issue a new API key (shown once); the previous one stops working at once."""
    await get_follower_or_404(uow, principal, follower_id)
    api_key = new_secret(FOLLOWER_KEY_PREFIX)
    old = await FollowerRepository(uow.session).replace_api_key_hash(
        follower_id, hash_secret(api_key)
    )
    revoke_after_commit(uow, runtime, old)
    return ApiKeyOut(follower_id=follower_id, api_key=api_key)


@router.delete(
    "/{follower_id}/api-keys",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(401, 404),
)
async def revoke_api_key(
    follower_id: UUID, principal: PrincipalDep, uow: UowDep, runtime: RuntimeDep
) -> None:
    """Revoke the follower's API key: none works until the admin rotates a new one."""
    await get_follower_or_404(uow, principal, follower_id)
    old = await FollowerRepository(uow.session).replace_api_key_hash(follower_id, None)
    revoke_after_commit(uow, runtime, old)
