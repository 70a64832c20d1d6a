"""Push mode: WS /v1/leaders/{id}/fills/ws, authenticated with the leader's push token."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from uuid import UUID

import msgspec
import structlog
from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status

from app.api.auth import note_auth, ws_token
from app.db.repositories.accounts import LeaderRepository
from app.ingest.handler import handle_frame
from app.metrics import AUTH_LOOKUPS
from app.pipeline import FillNotRecorded
from app.runtime import Runtime
from app.security.tokens import hash_secret

log = structlog.get_logger(__name__)
router = APIRouter()
_encoder = msgspec.json.Encoder()
# The close reason of a push socket at shutdown: 1012 (service restart) tells the leader to
# reconnect; what it sent but never got acknowledged, it resends.
SHUTTING_DOWN = "shutting down; resend unacked fills"


async def _check(runtime: Runtime, leader_id: UUID, token: str | None) -> str | None:
    """None when ``token`` may push for the leader now, else the close reason."""
    if not token:
        return "unauthorized"
    AUTH_LOOKUPS.inc()
    async with runtime.sessionmaker() as session:
        leader = await LeaderRepository(session).get(leader_id)
    if leader is None or leader.feed_kind != "push" or leader.push_token_hash is None:
        return "unauthorized"
    if not hmac.compare_digest(leader.push_token_hash, hash_secret(token)):
        return "unauthorized"
    # A paused leader's fills are not copied: its socket is refused (and closed on pause).
    return "leader paused" if leader.status != "active" else None


@router.websocket("/v1/leaders/{leader_id}/fills/ws")
async def leader_fills_ws(websocket: WebSocket, leader_id: UUID) -> None:
    runtime: Runtime = websocket.app.state.runtime
    await websocket.accept()
    token = ws_token(websocket)
    try:
        refused = await _check(runtime, leader_id, token)
    except Exception as exc:
        log.warning("push_auth_unavailable", leader_id=str(leader_id), error=repr(exc))
        await websocket.close(code=status.WS_1011_INTERNAL_ERROR, reason="try again later")
        return
    note_auth(websocket.scope, refused is None)
    if refused is not None or token is None:
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason=refused or "")
        return

    async def still_valid() -> bool:
        return await _check(runtime, leader_id, token) is None

    async with runtime.sockets.guarded(websocket, hash_secret(token), None, still_valid) as revoked:
        if revoked is not None:
            with structlog.contextvars.bound_contextvars(leader_id=str(leader_id)):
                await _receive_fills(websocket, runtime, leader_id, revoked)


async def _receive_fills(
    websocket: WebSocket, runtime: Runtime, leader_id: UUID, revoked: asyncio.Event
) -> None:
    # Oversize frames never get here: uvicorn's ws_max_size (COPYTRADE_MAX_FRAME_BYTES) closes
    # the socket with 1009 first.
    drain = runtime.drain
    if drain.draining():
        await websocket.close(code=status.WS_1012_SERVICE_RESTART, reason=SHUTTING_DOWN)
        return
    log.info("push_feed_connected")
    revocation = asyncio.create_task(revoked.wait())
    draining = asyncio.create_task(drain.wait())
    try:
        with drain.session(str(leader_id)):
            while True:
                if drain.draining():
                    # Shutting down: the frame in flight (if any) was acknowledged above;
                    # anything the leader sent since is unacknowledged and comes back.
                    await websocket.close(code=status.WS_1012_SERVICE_RESTART, reason=SHUTTING_DOWN)
                    break
                receiver = asyncio.ensure_future(websocket.receive())
                await asyncio.wait(
                    {receiver, revocation, draining}, return_when=asyncio.FIRST_COMPLETED
                )
                if not receiver.done():
                    receiver.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await receiver
                    if drain.draining():
                        continue  # closed at the top of the loop
                    # The push token was rotated or revoked: stop taking fills on it.
                    await websocket.close(
                        code=status.WS_1008_POLICY_VIOLATION, reason="credential revoked"
                    )
                    break
                message = receiver.result()
                if message["type"] == "websocket.disconnect":
                    break
                raw = message.get("text") or message.get("bytes") or b""
                try:
                    # One frame at a time, in order: the ack is sent only after the commit.
                    reply = await handle_frame(runtime.pipeline, leader_id, raw, "push")
                except FillNotRecorded as exc:
                    # Nothing recorded (the database timed out or is away): say which fill and
                    # why, then close like below, so the leader resends it first.
                    await websocket.send_text(
                        _encoder.encode(
                            {
                                "type": "error",
                                "fill_id": exc.fill_id,
                                "error": f"not recorded: {exc.reason}; resend",
                                "retry": True,
                            }
                        ).decode()
                    )
                    await websocket.close(
                        code=status.WS_1011_INTERNAL_ERROR,
                        reason="not recorded; resend unacked fills",
                    )
                    return
                except Exception as exc:
                    # Postgres unreachable or similar: nothing was acknowledged. Closing (rather
                    # than answering and reading on) keeps the leader's fills in order: it
                    # reconnects and resends from its first unacknowledged fill; duplicates are
                    # recognised.
                    log.warning("push_frame_failed", error=repr(exc))
                    await websocket.close(
                        code=status.WS_1011_INTERNAL_ERROR,
                        reason="not recorded; resend unacked fills",
                    )
                    return
                await websocket.send_text(_encoder.encode(reply.body).decode())
    except WebSocketDisconnect:
        pass
    finally:
        for waiter in (revocation, draining):
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter
        log.info("push_feed_disconnected")
