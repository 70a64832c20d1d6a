"""Bearer authentication: the admin token or a follower API key, never confused."""

from __future__ import annotations

import hmac
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, HTTPException, Request, WebSocket, status

from app.db.session import UnitOfWork
from app.runtime import Runtime
from app.security.tokens import FOLLOWER_KEY_PREFIX as FOLLOWER_KEY_PREFIX
from app.security.tokens import PUSH_TOKEN_PREFIX as PUSH_TOKEN_PREFIX
from app.security.tokens import hash_secret as hash_secret
from app.security.tokens import new_secret as new_secret

# Where a route notes in its ASGI scope whether the request's credential was good, for the
# rate limit (app/api/limits.py) to remember.
AUTH_OUTCOME = "copytrade.auth_ok"


@dataclass(frozen=True, slots=True)
class Admin:
    pass


@dataclass(frozen=True, slots=True)
class FollowerPrincipal:
    follower_id: UUID


Principal = Admin | FollowerPrincipal


def revoke_after_commit(uow: UnitOfWork, runtime: Runtime, key_hash: str | None) -> None:
    """Once the new hash is committed, close every open socket of the old credential."""
    if key_hash is None:
        return

    async def _revoke() -> None:
        await runtime.sockets.revoke(key_hash)

    uow.after_commit(_revoke)


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def resolve(runtime: Runtime, token: str | None) -> Principal | None:
    if not token:
        return None
    admin = runtime.settings.admin_token.get_secret_value().encode()
    if hmac.compare_digest(token.encode(), admin):
        return Admin()
    if not token.startswith(FOLLOWER_KEY_PREFIX):
        return None
    follower_id = await runtime.follower_for_key_hash(hash_secret(token))
    return FollowerPrincipal(follower_id) if follower_id else None


_UNAUTHORIZED = HTTPException(
    status.HTTP_401_UNAUTHORIZED,
    detail="missing or invalid bearer token",
    headers={"WWW-Authenticate": "Bearer"},
)


def note_auth(scope: MutableMapping[str, Any], ok: bool) -> None:
    """Record in ``scope`` whether the request's credential authenticated."""
    scope[AUTH_OUTCOME] = ok


async def get_principal(request: Request) -> Principal:
    principal = await resolve(
        request.app.state.runtime, bearer_token(request.headers.get("authorization"))
    )
    note_auth(request.scope, principal is not None)
    if principal is None:
        raise _UNAUTHORIZED
    return principal


async def require_admin(principal: Annotated[Principal, Depends(get_principal)]) -> Admin:
    if not isinstance(principal, Admin):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="admin token required")
    return principal


def ensure_owner(principal: Principal, follower_id: UUID) -> None:
    """A follower key reaches only its own follower: anything else is 'not found'."""
    if isinstance(principal, FollowerPrincipal) and principal.follower_id != follower_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="follower not found")


def ws_token(websocket: WebSocket) -> str | None:
    """Browsers cannot set headers on websockets, hence the ``token`` query parameter."""
    header = bearer_token(websocket.headers.get("authorization"))
    return header or websocket.query_params.get("token")


PrincipalDep = Annotated[Principal, Depends(get_principal)]
AdminDep = Annotated[Admin, Depends(require_admin)]
