"""PUT/GET/DELETE /v1/followers/{id}/account: who may connect what, and what is never shown."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from tests.support import Api, LiveServer, start_live_server
from tests.venues.harness import venue_settings

# Loopback addresses nothing listens on: the executor's calls fail, the API is what is tested.
ALLOWED_REST = "http://127.0.0.1:9/allowed"
ALLOWED_WS = "ws://127.0.0.1:9/allowed"
KEY, SECRET = "follower-key-0a1b2c", "follower-secret-3d4e5f"


@pytest.fixture
async def live(clean: None) -> AsyncIterator[LiveServer]:
    settings = venue_settings(venue_url_allowlist=[ALLOWED_REST, ALLOWED_WS])
    async with start_live_server(settings) as server:
        yield server


def body(**extra: Any) -> dict[str, Any]:
    return {"kind": "binance-usdm", "api_key": KEY, "api_secret": SECRET, **extra}


async def test_a_follower_connects_its_own_account_and_never_sees_the_keys(
    live: LiveServer, db: asyncpg.Connection
) -> None:
    api = Api(live.http)
    follower = await api.follower()
    path = f"/v1/followers/{follower['id']}/account"
    token = follower["api_key"]

    put = await api.call(
        "PUT", path, 200, token, json=body(rest_url=ALLOWED_REST + "/v1", ws_url=ALLOWED_WS)
    )
    got = await api.call("GET", path, 200, token)

    assert put["kind"] == got["kind"] == "binance-usdm"
    assert put["status"] == "connecting"
    for shown in (put, got):
        assert KEY not in json.dumps(shown)
        assert SECRET not in json.dumps(shown)
    stored = await db.fetchrow("SELECT secret, config FROM follower_account")
    assert stored is not None
    assert KEY not in stored["secret"]
    assert SECRET not in stored["secret"]
    assert KEY not in stored["config"]
    assert SECRET not in stored["config"]


@pytest.mark.parametrize(
    ("field", "url"),
    [
        ("rest_url", "http://169.254.169.254/latest"),
        ("rest_url", "http://127.0.0.1:9"),  # the allowed host, not under the allowed path
        ("ws_url", "ws://127.0.0.1:6379/"),
        ("ws_api_url", "ws://127.0.0.1:6379/"),  # the order socket: the same rule
        ("rest_url", "https://127.0.0.1:9/allowed"),  # another scheme, another origin
    ],
)
async def test_a_follower_may_not_choose_a_url_outside_the_allowlist(
    live: LiveServer, field: str, url: str
) -> None:
    api = Api(live.http)
    follower = await api.follower()
    path = f"/v1/followers/{follower['id']}/account"

    refused = await api.call("PUT", path, 403, follower["api_key"], json=body(**{field: url}))
    admin = await api.call("PUT", path, 200, json=body(**{field: url}))

    assert refused["detail"].startswith(f"{field}: only the admin may set it")
    assert admin["status"] == "connecting"


async def test_another_followers_account_is_not_found(live: LiveServer) -> None:
    api = Api(live.http)
    mine, other = await api.follower("mine"), await api.follower("other")
    path = f"/v1/followers/{other['id']}/account"

    await api.call("PUT", path, 404, mine["api_key"], json=body())
    await api.call("GET", path, 404, mine["api_key"])
    await api.call("DELETE", path, 404, mine["api_key"])


@pytest.mark.parametrize(
    ("sent", "field"),
    [
        ({"kind": "binance-usdm", "api_key": KEY}, "api_secret"),
        ({**body(), "api_secret": "has space"}, "api_secret"),
        ({**body(), "rest_url": "ftp://example.com"}, "rest_url"),
        ({**body(), "extra": 1}, "extra"),
        ({"kind": "okx", "api_key": KEY, "api_secret": SECRET}, "passphrase"),
    ],
)
async def test_a_bad_body_is_refused_naming_the_field(
    live: LiveServer, sent: dict[str, Any], field: str
) -> None:
    api = Api(live.http)
    follower = await api.follower()

    answer = await api.call("PUT", f"/v1/followers/{follower['id']}/account", 422, json=sent)

    assert field in json.dumps(answer["detail"])
    assert SECRET not in json.dumps(answer)


async def test_no_account_is_not_found(live: LiveServer) -> None:
    api = Api(live.http)
    follower = await api.follower()

    answer = await api.call("GET", f"/v1/followers/{follower['id']}/account", 404)

    assert answer["detail"].startswith("account:")
