"""A follower's exchange account: connect, show, disconnect (admin or the follower itself)."""

from __future__ import annotations

import json
from uuid import UUID

from fastapi import APIRouter, HTTPException, status

from app.api.auth import Admin, PrincipalDep
from app.api.decimal_json import DecimalRoute
from app.api.deps import RuntimeDep, UowDep
from app.api.followers import get_follower_or_404
from app.api.responses import errors
from app.api.views import AccountOut
from app.db.repositories.follower_accounts import FollowerAccountRepository
from app.db.tables import FollowerAccount
from app.venues import registry
from app.venues.accounts import disconnect, fence, open_fence
from app.venues.configs import AccountConfig, stored_config
from app.venues.urls import url_allowed

router = APIRouter(prefix="/v1/followers", tags=["accounts"], route_class=DecimalRoute)


def account_out(account: FollowerAccount) -> AccountOut:
    return AccountOut(
        kind=account.kind,
        status=account.status,
        last_error=account.last_error,
        equity=account.equity,
        equity_at=account.equity_at,
        positions_at=account.positions_at,
    )


@router.put("/{follower_id}/account", responses=errors(401, 403, 404, 409, 422))
async def put_account(
    follower_id: UUID,
    body: AccountConfig,
    principal: PrincipalDep,
    uow: UowDep,
    runtime: RuntimeDep,
) -> AccountOut:
    """Connect the follower to its exchange account: the execute role places its orders there
    and reads its equity and positions. Replaces the account connected before, if any."""
    await get_follower_or_404(uow, principal, follower_id)
    if not registry.supported(body.kind):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            detail=f"kind: {body.kind!r} accounts cannot be traded by this service yet",
        )
    if not isinstance(principal, Admin):
        allowlist = runtime.settings.venue_url_allowlist
        for name in ("rest_url", "ws_url", "ws_api_url"):
            url = getattr(body, name)
            if url is not None and not url_allowed(str(url), allowlist):
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN,
                    detail=f"{name}: only the admin may set it, or a URL within "
                    "COPYTRADE_VENUE_URL_ALLOWLIST",
                )
    if runtime.cipher is None:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail="account: exchange credentials cannot be stored: "
            "COPYTRADE_CREDENTIALS_KEY is not set on the service",
        )
    config, secrets = stored_config(body)
    account = await FollowerAccountRepository(uow.session).put(
        follower_id, body.kind, config, runtime.cipher.encrypt(json.dumps(secrets))
    )
    # Before the commit: an executor started by another instance right after it must find
    # the fence of an earlier DELETE gone.
    await open_fence(runtime.redis, follower_id)

    async def _start() -> None:
        await runtime.accounts.refresh()

    uow.after_commit(_start)
    return account_out(account)


@router.get("/{follower_id}/account", responses=errors(401, 404))
async def get_account(follower_id: UUID, principal: PrincipalDep, uow: UowDep) -> AccountOut:
    await get_follower_or_404(uow, principal, follower_id)
    account = await FollowerAccountRepository(uow.session).get(follower_id)
    if account is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="account: none connected")
    return account_out(account)


@router.delete(
    "/{follower_id}/account", status_code=status.HTTP_204_NO_CONTENT, responses=errors(401, 404)
)
async def delete_account(
    follower_id: UUID, principal: PrincipalDep, uow: UowDep, runtime: RuntimeDep
) -> None:
    """Disconnect: the executor stops, orders still queued are reported ``expired`` (none is
    placed after this answers), and the ``copytrade-exec`` consumer group is removed."""
    await get_follower_or_404(uow, principal, follower_id)
    if not await FollowerAccountRepository(uow.session).remove(follower_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="account: none connected")
    # Before the commit: from here on no executor, on any instance, sends another order.
    await fence(runtime.redis, follower_id)

    async def _disconnect() -> None:
        await runtime.accounts.stop_here(follower_id)
        await disconnect(runtime.redis, follower_id)
        await runtime.accounts.refresh()

    uow.after_commit(_disconnect)
