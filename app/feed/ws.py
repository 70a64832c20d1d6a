"""WS /v1/followers/{id}/orders/ws: that follower's orders as they are created."""

from __future__ import annotations

import asyncio
import contextlib
from uuid import UUID

from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status

from app.api.auth import FollowerPrincipal, authenticate_ws
from app.runtime import Runtime

router = APIRouter()


@router.websocket("/v1/followers/{follower_id}/orders/ws")
async def follower_orders_ws(websocket: WebSocket, follower_id: UUID) -> None:
    runtime: Runtime = websocket.app.state.runtime
    await websocket.accept()
    principal = await authenticate_ws(websocket, runtime)
    allowed = (
        principal.follower_id == follower_id
        if isinstance(principal, FollowerPrincipal)
        else principal is not None and await runtime.follower_exists(follower_id)
    )
    if not allowed:
        # The same close for "no key", "someone else's follower" and "no such follower".
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason="unauthorized")
        return
    sub = await runtime.feed.subscribe(follower_id)
    # Reading in the background notices a client that went away while no orders flow.
    reader = asyncio.create_task(_drain_client(websocket))
    try:
        while not reader.done():
            getter = asyncio.ensure_future(sub.queue.get())
            done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                break
            await websocket.send_text(getter.result())
            if sub.overflowed:
                await websocket.close(code=status.WS_1013_TRY_AGAIN_LATER, reason="too slow")
                break
    except WebSocketDisconnect:
        pass
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
        await runtime.feed.unsubscribe(follower_id, sub)


async def _drain_client(websocket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await websocket.receive_text()
