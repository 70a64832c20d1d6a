"""WS /v1/followers/{id}/orders/ws: that follower's orders as they are created."""

from __future__ import annotations

import asyncio
import contextlib
from uuid import UUID

from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status

from app.api.auth import FollowerPrincipal, hash_secret, resolve, ws_token
from app.runtime import Runtime

router = APIRouter()


@router.websocket("/v1/followers/{follower_id}/orders/ws")
async def follower_orders_ws(websocket: WebSocket, follower_id: UUID) -> None:
    runtime: Runtime = websocket.app.state.runtime
    await websocket.accept()
    token = ws_token(websocket)
    principal = await resolve(runtime, token)
    allowed = (
        principal.follower_id == follower_id
        if isinstance(principal, FollowerPrincipal)
        else principal is not None and await runtime.follower_exists(follower_id)
    )
    if not allowed or token is None:
        # The same close for "no key", "someone else's follower" and "no such follower".
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason="unauthorized")
        return

    async def still_valid() -> bool:
        return await resolve(runtime, token) == principal

    # The operator's admin token watches any number of followers; a follower key has a cap.
    limit = (
        runtime.settings.ws_max_connections_per_key
        if isinstance(principal, FollowerPrincipal)
        else None
    )
    async with runtime.sockets.guarded(
        websocket, hash_secret(token), limit, still_valid
    ) as revoked:
        if revoked is not None:
            await _stream(websocket, runtime, follower_id, revoked)


async def _stream(
    websocket: WebSocket, runtime: Runtime, follower_id: UUID, revoked: asyncio.Event
) -> None:
    """Send the follower's orders until the client leaves, lags or its key is revoked."""
    sub = await runtime.feed.subscribe(follower_id)
    # Reading in the background notices a client that went away while no orders flow.
    reader = asyncio.create_task(_drain_client(websocket))
    revocation = asyncio.create_task(revoked.wait())
    try:
        while not reader.done():
            getter = asyncio.ensure_future(sub.queue.get())
            done, _ = await asyncio.wait(
                {getter, reader, revocation}, return_when=asyncio.FIRST_COMPLETED
            )
            if getter not in done:
                getter.cancel()
                if revocation in done:
                    await websocket.close(
                        code=status.WS_1008_POLICY_VIOLATION, reason="credential revoked"
                    )
                break
            await websocket.send_text(getter.result())
            if sub.overflowed:
                await websocket.close(code=status.WS_1013_TRY_AGAIN_LATER, reason="too slow")
                break
    except WebSocketDisconnect:
        pass
    finally:
        for task in (reader, revocation):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await runtime.feed.unsubscribe(follower_id, sub)


async def _drain_client(websocket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await websocket.receive_text()
