"""POST /v1/leaders/{id}/replay: a dry run of sizing over a leader's past fills, streamed.

Read-only (the transaction is set READ ONLY before anything is read). The admin may replay any
leader for any follower or for a hypothetical one; a follower key only replays a leader it
subscribes to, with its own subscription's settings and equity history (overrides allowed: a
what-if on its own settings). The answer is NDJSON, a line per document, so a long replay
reaches the client as it is computed: ``{"type": "replay", ...}`` (settings, fill count), one
``{"type": "fill", ...}`` per leader fill, then ``{"type": "summary", ...}``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from fastapi import APIRouter, HTTPException, status
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime, Field

from app.api.auth import FollowerPrincipal, PrincipalDep
from app.api.decimal_json import DecimalRoute
from app.api.deps import UowDep
from app.api.responses import errors
from app.api.schemas import Positive, Request
from app.db.repositories.trading import SubscriptionRepository
from app.domain.plan_model import SizingMode
from app.sizing.replay import (
    Replayer,
    ReplayError,
    fill_document,
    header_document,
    load_inputs,
    summary_document,
)

router = APIRouter(prefix="/v1/leaders", tags=["replay"], route_class=DecimalRoute)
MAX_FILLS = 100_000  # one request's work: about 2 s of planning
YIELD_EVERY = 200  # fills planned between two yields to the event loop
_encoder = msgspec.json.Encoder()


class ReplayOverrides(Request):
    """Hypothetical settings that replace the subscription's (or the defaults)."""

    mode: Literal["target", "per_fill", "fixed_multiplier", "fixed_notional"] | None = None
    multiplier: Positive | None = None
    notional: Positive | None = None
    max_order_notional: Positive | None = None
    max_position_notional: Positive | None = None
    max_leverage: Positive | None = None
    max_slippage: Annotated[Decimal, Field(ge=0, lt=1)] | None = None


class ReplayIn(Request):
    from_: AwareDatetime = Field(alias="from", description="Replay fills from this time on.")
    to: AwareDatetime | None = Field(default=None, description="Up to this time (exclusive).")
    follower_id: UUID | None = Field(
        default=None,
        description="Use this follower's subscription to the leader and its equity history "
        "(a follower key: always its own).",
    )
    equity: Positive | None = Field(
        default=None,
        description="A fixed follower equity for the whole replay (admin; required without "
        "follower_id).",
    )
    overrides: ReplayOverrides = Field(default_factory=ReplayOverrides)


def _overrides(body: ReplayOverrides) -> dict[str, Any]:
    values: dict[str, Any] = body.model_dump(exclude_none=True)
    if "mode" in values:
        values["mode"] = SizingMode(values["mode"])
    return values


async def _scope(
    body: ReplayIn, principal: PrincipalDep, uow: UowDep, leader_id: UUID
) -> UUID | None:
    """The follower this replay is for; a follower key gets only its own subscription."""
    if not isinstance(principal, FollowerPrincipal):
        return body.follower_id
    if body.follower_id not in (None, principal.follower_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="follower not found")
    if body.equity is not None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, detail="equity: a follower replays with its own equity"
        )
    sub = await SubscriptionRepository(uow.session).live_for_pair(principal.follower_id, leader_id)
    if sub is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="subscription not found")
    return principal.follower_id


def _line(kind: str, document: dict[str, Any]) -> bytes:
    return _encoder.encode({"type": kind, **document}) + b"\n"


@router.post(
    "/{leader_id}/replay",
    responses={
        **errors(401, 403, 404, 422),
        200: {"content": {"application/x-ndjson": {}}, "description": "NDJSON documents"},
    },
    response_class=StreamingResponse,
)
async def replay_leader(
    leader_id: UUID, body: ReplayIn, principal: PrincipalDep, uow: UowDep
) -> StreamingResponse:
    """Re-size the leader's past fills as a subscription would have: nothing is written."""
    if body.to is not None and body.to <= body.from_:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="to: must be after from")
    follower_id = await _scope(body, principal, uow, leader_id)
    try:
        inputs = await load_inputs(
            uow.session,
            leader_id,
            body.from_,
            body.to,
            follower_id=follower_id,
            overrides=_overrides(body.overrides),
            equity=body.equity,
        )
    except ReplayError as exc:
        code = status.HTTP_404_NOT_FOUND if "not found" in str(exc) else 422
        raise HTTPException(code, detail=str(exc)) from exc
    if len(inputs.fills) > MAX_FILLS:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"from: {len(inputs.fills)} fills in the range, at most {MAX_FILLS} at once",
        )

    async def documents() -> AsyncIterator[bytes]:
        yield _line("replay", header_document(inputs))
        replayer = Replayer(inputs)
        for index, fill in enumerate(inputs.fills, 1):
            yield _line("fill", fill_document(replayer.step(fill)))
            if index % YIELD_EVERY == 0:
                # Planning is synchronous: let other requests in between slices.
                await asyncio.sleep(0)
        yield _line("summary", summary_document(replayer.result()))

    return StreamingResponse(documents(), media_type="application/x-ndjson")
