"""Leaders: admin only."""

from __future__ import annotations

import json
from typing import Annotated, Any
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
    LeaderPatch,
    PushTokenOut,
)
from app.db.repositories.accounts import LeaderRepository
from app.db.repositories.feeds import FeedRepository
from app.db.repositories.trading import SubscriptionRepository
from app.db.tables import Leader
from app.venues.configs import VenueFeed, split_secrets

MAX_OFFSET = 1_000_000
router = APIRouter(prefix="/v1/leaders", tags=["leaders"], route_class=DecimalRoute)


async def leader_out(leader: Leader, runtime: RuntimeDep, uow: UowDep) -> LeaderOut:
    listener = runtime.listeners.state(leader.id)
    if listener is None and leader.feed_kind != "push":
        # Another instance may run it: its lease carries the state it last reported.
        lease = await FeedRepository(uow.session).state(leader.id)
        if lease is not None:
            owner, state = lease
            listener = {**(state or {"state": "starting"}), "owner": owner}
    return LeaderOut(
        id=leader.id,
        name=leader.name,
        status=leader.status,
        feed=FeedOut(kind=leader.feed_kind, url=leader.feed_url, config=leader.feed_config),
        created_at=leader.created_at,
        listener=listener,
    )


async def _get_or_404(repo: LeaderRepository, leader_id: UUID) -> Leader:
    leader = await repo.get(leader_id)
    if leader is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="leader not found")
    return leader


def _wake_listeners(uow: UowDep, runtime: RuntimeDep) -> None:
    """After the commit, let the listener manager start or stop listeners now; instances
    that did not take the request notice at their next lease heartbeat."""

    async def _wake() -> None:
        await runtime.listeners.refresh()

    uow.after_commit(_wake)


@router.post("", status_code=status.HTTP_201_CREATED, responses=errors(401, 403, 409))
async def create_leader(
    body: LeaderCreate, _: AdminDep, uow: UowDep, runtime: RuntimeDep
) -> LeaderCreated:
    push_token = new_secret(PUSH_TOKEN_PREFIX) if body.feed.kind == "push" else None
    url = str(body.feed.url) if isinstance(body.feed, GenericFeed) else None
    config: dict[str, Any] | None = None
    secret: str | None = None
    if isinstance(body.feed, VenueFeed):
        config, secrets = split_secrets(body.feed)
        if secrets:
            if runtime.cipher is None:
                raise HTTPException(
                    status.HTTP_409_CONFLICT,
                    detail="feed: exchange credentials cannot be stored: "
                    "COPYTRADE_CREDENTIALS_KEY is not set on the service",
                )
            secret = runtime.cipher.encrypt(json.dumps(secrets))
    leader = await LeaderRepository(uow.session).add(
        body.name,
        body.feed.kind,
        url,
        hash_secret(push_token) if push_token else None,
        feed_config=config,
        feed_secret=secret,
    )
    if body.feed.kind != "push":
        _wake_listeners(uow, runtime)
    out = await leader_out(leader, runtime, uow)
    return LeaderCreated(**out.model_dump(), push_token=push_token)


@router.patch("/{leader_id}", responses=errors(401, 403, 404))
async def update_leader(
    leader_id: UUID, body: LeaderPatch, _: AdminDep, uow: UowDep, runtime: RuntimeDep
) -> LeaderOut:
    """Pause or resume a leader: its listener stops or starts, on whichever instance runs it.
    Fills made while paused are backfilled on resume (venue feeds)."""
    repo = LeaderRepository(uow.session)
    leader = await _get_or_404(repo, leader_id)
    if leader.status != body.status:
        await repo.set_status(leader_id, body.status)
        leader.status = body.status
        _wake_listeners(uow, runtime)
        if body.status == "paused":
            # A push leader's open sockets recheck their credential and close.
            revoke_after_commit(uow, runtime, leader.push_token_hash)
    return await leader_out(leader, runtime, uow)


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
    return [await leader_out(leader, runtime, uow) for leader in leaders]


@router.get("/{leader_id}", responses=errors(401, 403, 404))
async def get_leader(leader_id: UUID, _: AdminDep, uow: UowDep, runtime: RuntimeDep) -> LeaderOut:
    return await leader_out(
        await _get_or_404(LeaderRepository(uow.session), leader_id), runtime, uow
    )


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
    _wake_listeners(uow, runtime)


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
