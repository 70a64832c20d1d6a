"""The live order feeds: WS /v1/followers/{id}/orders/ws (that follower's orders, for the
admin or the follower itself) and WS /v1/orders/ws (every follower's, admin only).

Credentials: an ``Authorization: Bearer`` header, the ``token`` query parameter, or, for
browsers (which can set neither a header on a websocket nor should put a secret in a URL that
ends in access logs), the subprotocols ``["copytrade.v1", "bearer.<base64url(token)>"]``: the
server answers with ``copytrade.v1``, never echoing the credential. Base64url, because a
subprotocol must be an HTTP token and an admin token may hold any character.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
from collections.abc import Awaitable, Callable
from functools import partial
from uuid import UUID

import structlog
from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status

from app.api.auth import (
    Admin,
    FollowerPrincipal,
    Principal,
    note_auth,
    resolve,
    ws_token,
)
from app.db.repositories.accounts import FollowerRepository
from app.feed.admission import DeploymentFilter
from app.feed.hub import Subscriber
from app.metrics import FEED_SLOW_CLOSED
from app.runtime import Runtime
from app.security.tokens import hash_secret

log = structlog.get_logger(__name__)
router = APIRouter()
Admit = Callable[[str], Awaitable[bool]]

SUBPROTOCOL = "copytrade.v1"
# The close reason of a socket whose client fell behind (at most 123 bytes).
SLOW_REASON = "too slow: orders waited too long; reconnect, then read missed orders over REST"
BEARER_SUBPROTOCOL_PREFIX = "bearer."


def subprotocol_token(offered: list[str]) -> str | None:
    """The credential a browser sent as a ``bearer.<base64url>`` subprotocol, if any."""
    for item in offered:
        if item.startswith(BEARER_SUBPROTOCOL_PREFIX):
            encoded = item.removeprefix(BEARER_SUBPROTOCOL_PREFIX)
            try:
                return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
            except (binascii.Error, ValueError):
                return None
    return None


async def _accept(websocket: WebSocket) -> str | None:
    """Accept (choosing our subprotocol when offered) and return the socket's credential."""
    offered: list[str] = list(websocket.scope.get("subprotocols", ()))
    await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    return ws_token(websocket) or subprotocol_token(offered)


async def _refuse(websocket: WebSocket) -> None:
    # The same close for "no key", "someone else's follower", "no such follower", "not admin".
    await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason="unauthorized")


@router.websocket("/v1/followers/{follower_id}/orders/ws")
async def follower_orders_ws(websocket: WebSocket, follower_id: UUID) -> None:
    runtime: Runtime = websocket.app.state.runtime
    token = await _accept(websocket)
    principal = await resolve(runtime, token)
    allowed = (
        principal.follower_id == follower_id
        if isinstance(principal, FollowerPrincipal)
        else principal is not None and await runtime.follower_exists(follower_id)
    )
    note_auth(websocket.scope, principal is not None)
    if not allowed or token is None or principal is None:
        await _refuse(websocket)
        return
    await _serve(
        websocket,
        runtime,
        token,
        principal,
        partial(runtime.feed.subscribe, follower_id),
        partial(runtime.feed.unsubscribe, follower_id),
    )


@router.websocket("/v1/orders/ws")
async def all_orders_ws(websocket: WebSocket) -> None:
    """Every follower's orders as they are created: the admin's live view (the dashboard)."""
    runtime: Runtime = websocket.app.state.runtime
    token = await _accept(websocket)
    principal = await resolve(runtime, token)
    note_auth(websocket.scope, principal is not None)
    if token is None or not isinstance(principal, Admin):
        await _refuse(websocket)
        return
    async with runtime.sessionmaker() as session:
        followers = await FollowerRepository(session).all_ids()
    ours = DeploymentFilter(followers, runtime.follower_exists)
    await _serve(
        websocket,
        runtime,
        token,
        principal,
        runtime.feed.subscribe_all,
        runtime.feed.unsubscribe_all,
        ours.admit,
    )


async def _serve(
    websocket: WebSocket,
    runtime: Runtime,
    token: str,
    principal: Principal,
    subscribe: Callable[[], Awaitable[Subscriber]],
    unsubscribe: Callable[[Subscriber], Awaitable[None]],
    admit: Admit | None = None,
) -> None:
    """Hold the credential's lease, subscribe and stream until the socket ends."""

    async def still_valid() -> bool:
        return await resolve(runtime, token) == principal

    # The operator's admin token watches any number of feeds; a follower key has a cap.
    limit = (
        runtime.settings.ws_max_connections_per_key
        if isinstance(principal, FollowerPrincipal)
        else None
    )
    async with runtime.sockets.guarded(
        websocket, hash_secret(token), limit, still_valid
    ) as revoked:
        if revoked is None:
            return
        sub = await subscribe()
        try:
            await _stream(websocket, sub, revoked, admit, runtime.settings.feed_send_timeout_s)
        finally:
            await unsubscribe(sub)


async def _stream(
    websocket: WebSocket,
    sub: Subscriber,
    revoked: asyncio.Event,
    admit: Admit | None,
    send_timeout_s: float,
) -> None:
    """Send the feed's messages (those ``admit`` passes) until the client leaves, lags or its
    key is revoked. A client lags when one send waits ``send_timeout_s`` (it stopped reading:
    the socket's buffers are full) or when its queue outgrows its limit."""
    # Reading in the background notices a client that went away while no orders flow. Either
    # task ending ends the subscriber's stream, which wakes the loop below.
    reader = asyncio.create_task(_drain_client(websocket))
    revocation = asyncio.create_task(revoked.wait())
    for task in (reader, revocation):
        task.add_done_callback(lambda _: sub.end())
    try:
        while (text := await sub.next()) is not None:
            if admit is None or await admit(text):
                try:
                    await asyncio.wait_for(websocket.send_text(text), send_timeout_s)
                except TimeoutError:
                    await _close_slow(websocket, "send_timeout", send_timeout_s)
                    return
        if sub.overflowed and not reader.done():
            await _close_slow(websocket, "queue_full", send_timeout_s)
            return
        # Ended: the client left (nothing to close), or the key was revoked.
        if revocation.done() and not reader.done():
            await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason="credential revoked")
    except WebSocketDisconnect:
        pass
    finally:
        for task in (reader, revocation):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _close_slow(websocket: WebSocket, why: str, timeout_s: float) -> None:
    """Close a socket whose client fell behind with 1013 and a reason it can act on. The
    close frame waits behind whatever the client has not read: if that does not move in
    ``timeout_s`` either, the socket is left to the server to drop."""
    FEED_SLOW_CLOSED.labels(reason=why).inc()
    log.info("feed_socket_too_slow", reason=why)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(
            websocket.close(code=status.WS_1013_TRY_AGAIN_LATER, reason=SLOW_REASON), timeout_s
        )


async def _drain_client(websocket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await websocket.receive_text()
