"""Leaders: admin only."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, status

from app.api.auth import (
    PUSH_TOKEN_PREFIX,
    AdminDep,
    hash_secret,
    new_secret,
    revoke_after_commit,
)
from app.api.decimal_json import DecimalRoute
from app.api.deps import RuntimeDep, UowDep
from app.api.responses import errors
from app.api.schemas import (
    EquityIn,
    EquityOut,
    FeedOut,
    GenericFeed,
    LeaderCreate,
    LeaderCreated,
    LeaderOut,
    PushTokenOut,
)
from app.db.repositories.accounts import LeaderRepository
from app.db.repositories.trading import SubscriptionRepository
from app.db.tables import Leader

MAX_OFFSET = 1_000_000
router = APIRouter(prefix="/v1/leaders", tags=["leaders"], route_class=DecimalRoute)


def leader_out(leader: Leader, runtime: RuntimeDep) -> LeaderOut:
    return LeaderOut(
        id=leader.id,
        name=leader.name,
        feed=FeedOut(kind=leader.feed_kind, url=leader.feed_url),
        created_at=leader.created_at,
        listener=runtime.listeners.state(leader.id),
    )


async def _get_or_404(repo: LeaderRepository, leader_id: UUID) -> Leader:
    leader = await repo.get(leader_id)
    if leader is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="leader not found")
    return leader


@router.post("", status_code=status.HTTP_201_CREATED, responses=errors(401, 403))
async def create_leader(
    body: LeaderCreate, _: AdminDep, uow: UowDep, runtime: RuntimeDep
) -> LeaderCreated:
    push_token = new_secret(PUSH_TOKEN_PREFIX) if body.feed.kind == "push" else None
    url = str(body.feed.url) if isinstance(body.feed, GenericFeed) else None
    leader = await LeaderRepository(uow.session).add(
        body.name, body.feed.kind, url, hash_secret(push_token) if push_token else None
    )
    if url is not None:
        leader_id = leader.id

        async def _listen() -> None:
            runtime.listeners.ensure(leader_id, url)

        uow.after_commit(_listen)
    out = leader_out(leader, runtime)
    return LeaderCreated(**out.model_dump(), push_token=push_token)


@router.get("", responses=errors(401, 403))
async def list_leaders(
    _: AdminDep,
    uow: UowDep,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    # Bounded: Postgres takes a bigint OFFSET, and deep offset paging is no use anyway.
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[LeaderOut]:
    leaders = await LeaderRepository(uow.session).page(limit, offset)
    return [leader_out(leader, runtime) for leader in leaders]


@router.get("/{leader_id}", responses=errors(401, 403, 404))
async def get_leader(leader_id: UUID, _: AdminDep, uow: UowDep, runtime: RuntimeDep) -> LeaderOut:
    return leader_out(await _get_or_404(LeaderRepository(uow.session), leader_id), runtime)


@router.delete(
    "/{leader_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(401, 403, 404)
)
async def delete_leader(leader_id: UUID, _: AdminDep, uow: UowDep, runtime: RuntimeDep) -> None:
    repo = LeaderRepository(uow.session)
    leader = await _get_or_404(repo, leader_id)
    push_token_hash = leader.push_token_hash
    if not await repo.soft_delete(leader_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="leader not found")
    revoke_after_commit(uow, runtime, push_token_hash)
    await SubscriptionRepository(uow.session).end_all_for_leader(leader_id)

    async def _stop() -> None:
        await runtime.listeners.remove(leader_id)

    uow.after_commit(_stop)


@router.post(
    "/{leader_id}/equity",
    status_code=status.HTTP_201_CREATED,
    responses=errors(401, 403, 404),
)
async def add_leader_equity(
    leader_id: UUID, body: EquityIn, _: AdminDep, uow: UowDep, runtime: RuntimeDep
) -> EquityOut:
    await _get_or_404(LeaderRepository(uow.session), leader_id)
    reading = await runtime.pipeline.record_equity(
        uow, body.equity, body.as_of, leader_id=leader_id
    )
    return EquityOut(id=reading.snapshot_id, equity=reading.equity, as_of=reading.as_of)


async def _push_leader_or_error(repo: LeaderRepository, leader_id: UUID) -> Leader:
    leader = await _get_or_404(repo, leader_id)
    if leader.feed_kind != "push":
        raise HTTPException(status.HTTP_409_CONFLICT, detail="leader feed is not push mode")
    return leader


@router.post(
    "/{leader_id}/push-token",
    status_code=status.HTTP_201_CREATED,
    responses=errors(401, 403, 404, 409),
)
async def rotate_push_token(
    leader_id: UUID, _: AdminDep, uow: UowDep, runtime: RuntimeDep
) -> PushTokenOut:
    """Issue a new push token (shown once); the previous one and its socket die at once."""
    repo = LeaderRepository(uow.session)
    await _push_leader_or_error(repo, leader_id)
    push_token = new_secret(PUSH_TOKEN_PREFIX)
    old = await repo.replace_push_token_hash(leader_id, hash_secret(push_token))
    revoke_after_commit(uow, runtime, old)
    return PushTokenOut(leader_id=leader_id, push_token=push_token)


@router.delete(
    "/{leader_id}/push-token",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(401, 403, 404, 409),
)
async def revoke_push_token(leader_id: UUID, _: AdminDep, uow: UowDep, runtime: RuntimeDep) -> None:
    """Revoke the push token: the leader cannot push until a new one is rotated."""
    repo = LeaderRepository(uow.session)
    await _push_leader_or_error(repo, leader_id)
    old = await repo.replace_push_token_hash(leader_id, None)
    revoke_after_commit(uow, runtime, old)
