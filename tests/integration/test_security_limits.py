"""Hostile-input limits: body size (413), per-credential rate (429 with Retry-After), websocket
Origin allow-list (403) and order-feed connections per key (1013)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin

from app.security.tokens import hash_secret
from tests.conftest import make_settings
from tests.support import ADMIN, ADMIN_TOKEN, Api, LiveServer, bearer, eventually, start_live_server

EVIL = Origin("https://evil.example")


async def close_code(ws: ClientConnection) -> int | None:
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), timeout=5)
    return closed.value.rcvd.code if closed.value.rcvd else None


@pytest.fixture
async def strict_server(clean: None) -> AsyncIterator[LiveServer]:
    """A server with low limits, so that tests reach them quickly."""
    settings = make_settings(
        max_body_bytes=2048,
        rate_limit_per_s=1.0,
        rate_limit_burst=3,
        unauth_rate_limit="3/hour",
        ws_max_connections_per_key=2,
        ws_allowed_origins=["https://app.example"],
    )
    async with start_live_server(settings) as live:
        yield live


# --- body size --------------------------------------------------------------------------------


async def test_body_over_the_limit_is_413(server: LiveServer) -> None:
    # Arrange
    body = b'{"name": "' + b"x" * (64 * 1024) + b'"}'

    # Act
    response = await server.http.post(
        "/v1/followers", content=body, headers={**ADMIN, "Content-Type": "application/json"}
    )

    # Assert
    assert response.status_code == 413
    assert response.json() == {"detail": "request body larger than 65536 bytes"}
    assert (await server.http.get("/v1/leaders", headers=ADMIN)).json() == []


async def test_chunked_body_over_the_limit_is_413(strict_server: LiveServer) -> None:
    # Arrange
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    # Act
    response = await strict_server.http.post(
        "/v1/followers", content=chunks(), headers={**ADMIN, "Content-Type": "application/json"}
    )

    # Assert
    assert response.status_code == 413
    assert response.json() == {"detail": "request body larger than 2048 bytes"}


async def test_body_under_the_limit_passes(strict_server: LiveServer) -> None:
    # Arrange
    name = "n" * 100

    # Act
    response = await strict_server.http.post("/v1/followers", json={"name": name}, headers=ADMIN)

    # Assert
    assert response.status_code == 201
    assert response.json()["name"] == name


# --- rate limit -------------------------------------------------------------------------------


async def test_rate_limit_answers_429_with_retry_after_per_key(strict_server: LiveServer) -> None:
    # Arrange
    http = strict_server.http
    follower = await Api(http).follower()  # the admin's first request of its burst of 3
    path = f"/v1/followers/{follower['id']}"
    key = bearer(follower["api_key"])

    # Act
    statuses = [(await http.get(path, headers=key)).status_code for _ in range(3)]
    limited = await http.get(path, headers=key)
    admin = await http.get(path, headers=ADMIN)
    health = [(await http.get("/healthz")).status_code for _ in range(5)]

    # Assert
    assert statuses == [200, 200, 200]
    assert limited.status_code == 429
    assert limited.json() == {"detail": "rate limit exceeded"}
    assert 1 <= int(limited.headers["retry-after"]) <= 3  # the window: 3 requests in 3 s
    assert admin.status_code == 200
    assert health == [200] * 5


async def test_rate_limit_refills_over_time(strict_server: LiveServer) -> None:
    # Arrange
    http = strict_server.http
    for _ in range(3):
        await http.get("/v1/leaders", headers=ADMIN)
    limited = await http.get("/v1/leaders", headers=ADMIN)

    # Act
    await asyncio.sleep(float(limited.headers["retry-after"]))
    again = await http.get("/v1/leaders", headers=ADMIN)

    # Assert
    assert limited.status_code == 429
    assert again.status_code == 200


async def test_requests_without_a_credential_are_limited_by_address(
    strict_server: LiveServer,
) -> None:
    # Arrange
    http = strict_server.http

    # Act
    statuses = [(await http.get("/v1/leaders")).status_code for _ in range(4)]

    # Assert
    assert statuses == [401, 401, 401, 429]


# --- websocket Origin -------------------------------------------------------------------------


async def test_websocket_from_a_foreign_origin_is_refused(strict_server: LiveServer) -> None:
    # Arrange
    follower = await Api(strict_server.http).follower()
    url = f"{strict_server.ws_url}/v1/followers/{follower['id']}/orders/ws?token={ADMIN_TOKEN}"
    leader = await Api(strict_server.http).leader()
    push_url = f"{strict_server.ws_url}/v1/leaders/{leader['id']}/fills/ws"

    # Act
    with pytest.raises(InvalidStatus) as feed:
        await connect(url, origin=EVIL)
    with pytest.raises(InvalidStatus) as push:
        await connect(
            push_url,
            origin=EVIL,
            additional_headers=bearer(leader["push_token"]),
        )

    # Assert
    assert feed.value.response.status_code == 403
    assert push.value.response.status_code == 403


async def test_websocket_from_an_allowed_or_no_origin_is_served(
    strict_server: LiveServer,
) -> None:
    # Arrange
    follower = await Api(strict_server.http).follower()
    url = f"{strict_server.ws_url}/v1/followers/{follower['id']}/orders/ws?token={ADMIN_TOKEN}"

    # Act
    async with connect(url, origin=Origin("https://app.example")) as allowed:
        await allowed.ping()
    async with connect(url) as no_origin:
        await no_origin.ping()

    # Assert
    assert allowed.close_code == 1000
    assert no_origin.close_code == 1000


# --- order-feed connections per key -----------------------------------------------------------


async def test_feed_connections_per_key_are_limited(strict_server: LiveServer) -> None:
    # Arrange
    follower = await Api(strict_server.http).follower()
    key = follower["api_key"]
    url = f"{strict_server.ws_url}/v1/followers/{follower['id']}/orders/ws?token={key}"
    sockets = strict_server.runtime.sockets
    first = await connect(url)
    second = await connect(url)
    await eventually(lambda: sockets.count(hash_secret(key)) == 2)

    # Act
    async with connect(url) as third:
        refused = await close_code(third)
    await first.close()
    await eventually(lambda: sockets.count(hash_secret(key)) == 1)
    async with connect(url) as replacement:
        await eventually(lambda: sockets.count(hash_secret(key)) == 2)
        await replacement.ping()
    await second.close()

    # Assert
    assert refused == 1013


async def test_admin_feed_connections_are_not_limited(strict_server: LiveServer) -> None:
    # Arrange
    follower = await Api(strict_server.http).follower()
    url = f"{strict_server.ws_url}/v1/followers/{follower['id']}/orders/ws?token={ADMIN_TOKEN}"
    sockets = strict_server.runtime.sockets

    # Act
    opened = [await connect(url) for _ in range(3)]
    await eventually(lambda: sockets.count(hash_secret(ADMIN_TOKEN)) == 3)
    for ws in opened:
        await ws.ping()
        await ws.close()

    # Assert
    assert [ws.close_code for ws in opened] == [1000, 1000, 1000]
