"""Push mode: WS /v1/leaders/{id}/fills/ws, authenticated with the leader's push token."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from uuid import UUID

import msgspec
import structlog
from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status

from app.api.auth import hash_secret, ws_token
from app.db.repositories.accounts import LeaderRepository
from app.ingest.handler import handle_frame
from app.runtime import Runtime

log = structlog.get_logger(__name__)
router = APIRouter()
_encoder = msgspec.json.Encoder()


async def _leader_for_token(runtime: Runtime, leader_id: UUID, token: str | None) -> bool:
    if not token:
        return False
    async with runtime.sessionmaker() as session:
        leader = await LeaderRepository(session).get(leader_id)
    if leader is None or leader.feed_kind != "push" or leader.push_token_hash is None:
        return False
    return hmac.compare_digest(leader.push_token_hash, hash_secret(token))


@router.websocket("/v1/leaders/{leader_id}/fills/ws")
async def leader_fills_ws(websocket: WebSocket, leader_id: UUID) -> None:
    runtime: Runtime = websocket.app.state.runtime
    await websocket.accept()
    token = ws_token(websocket)
    try:
        authorized = await _leader_for_token(runtime, leader_id, token)
    except Exception as exc:
        log.warning("push_auth_unavailable", leader_id=str(leader_id), error=repr(exc))
        await websocket.close(code=status.WS_1011_INTERNAL_ERROR, reason="try again later")
        return
    if not authorized or token is None:
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason="unauthorized")
        return

    async def still_valid() -> bool:
        return await _leader_for_token(runtime, leader_id, token)

    async with runtime.sockets.guarded(websocket, hash_secret(token), None, still_valid) as revoked:
        if revoked is not None:
            await _receive_fills(websocket, runtime, leader_id, revoked)


async def _receive_fills(
    websocket: WebSocket, runtime: Runtime, leader_id: UUID, revoked: asyncio.Event
) -> None:
    # Oversize frames never get here: uvicorn's ws_max_size (COPYTRADE_MAX_FRAME_BYTES) closes
    # the socket with 1009 first.
    log.info("push_feed_connected", leader_id=str(leader_id))
    revocation = asyncio.create_task(revoked.wait())
    try:
        while True:
            receiver = asyncio.ensure_future(websocket.receive())
            await asyncio.wait({receiver, revocation}, return_when=asyncio.FIRST_COMPLETED)
            if not receiver.done():
                # The push token was rotated or revoked: stop taking fills on it.
                receiver.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await receiver
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
            except Exception as exc:
                # Postgres unreachable or similar: nothing was acknowledged. Closing (rather than
                # answering and reading on) keeps the leader's fills in order: it reconnects and
                # resends from its first unacknowledged fill; duplicates are recognised.
                log.warning("push_frame_failed", leader_id=str(leader_id), error=repr(exc))
                await websocket.close(
                    code=status.WS_1011_INTERNAL_ERROR, reason="not recorded; resend unacked fills"
                )
                return
            await websocket.send_text(_encoder.encode(reply.body).decode())
    except WebSocketDisconnect:
        pass
    finally:
        revocation.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await revocation
        log.info("push_feed_disconnected", leader_id=str(leader_id))
