"""Rotation and revocation of follower API keys and leader push tokens: the old credential fails
on REST at once, and its open websockets are closed with 1008, on this instance and others."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from app.security.tokens import hash_secret
from tests.conftest import make_settings
from tests.support import Api, LiveServer, bearer, eventually, push_socket, start_live_server

NOT_FOUND = {"detail": "follower not found"}


async def closed_with(ws: ClientConnection) -> int | None:
    """Wait for the server to close the socket; return its close code."""
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), timeout=5)
    return closed.value.rcvd.code if closed.value.rcvd else None


async def open_feed(server: LiveServer, follower_id: str, key: str) -> ClientConnection:
    """An order feed socket the server has registered under the key."""
    ws = await connect(f"{server.ws_url}/v1/followers/{follower_id}/orders/ws?token={key}")
    await eventually(lambda: server.runtime.sockets.count(hash_secret(key)) == 1)
    return ws


async def status_of(server: LiveServer, path: str, token: str) -> int:
    return (await server.http.get(path, headers=bearer(token))).status_code


@pytest.fixture
async def second_server(clean: None) -> AsyncIterator[LiveServer]:
    """Another instance on the same Postgres and Redis."""
    async with start_live_server(make_settings()) as live:
        yield live


# --- follower API keys: REST ------------------------------------------------------------------


async def test_rotated_key_fails_at_once_and_new_key_works(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    follower = await api.follower()
    path = f"/v1/followers/{follower['id']}"

    # Act
    rotated = await api.call("POST", f"{path}/api-keys", 201)

    # Assert
    assert set(rotated) == {"follower_id", "api_key"}
    assert rotated["follower_id"] == follower["id"]
    assert rotated["api_key"].startswith("ctf_")
    assert rotated["api_key"] != follower["api_key"]
    assert await status_of(server, path, follower["api_key"]) == 401
    assert await status_of(server, path, rotated["api_key"]) == 200


async def test_follower_rotates_its_own_key(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    follower = await api.follower()
    path = f"/v1/followers/{follower['id']}"

    # Act
    rotated = await api.call("POST", f"{path}/api-keys", 201, token=follower["api_key"])

    # Assert
    assert await status_of(server, path, follower["api_key"]) == 401
    assert await status_of(server, path, rotated["api_key"]) == 200


async def test_revoked_key_fails_until_the_admin_rotates(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    follower = await api.follower()
    path = f"/v1/followers/{follower['id']}"

    # Act
    revoked = await api.call("DELETE", f"{path}/api-keys", 204, token=follower["api_key"])
    after_revoke = await status_of(server, path, follower["api_key"])
    second_revoke = await api.call("DELETE", f"{path}/api-keys", 204)
    rotated = await api.call("POST", f"{path}/api-keys", 201)

    # Assert
    assert revoked is None
    assert second_revoke is None
    assert after_revoke == 401
    assert await status_of(server, path, follower["api_key"]) == 401
    assert await status_of(server, path, rotated["api_key"]) == 200


async def test_key_of_a_cannot_rotate_or_revoke_b(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    a = await api.follower("A")
    b = await api.follower("B")
    b_keys = f"/v1/followers/{b['id']}/api-keys"
    nobody_keys = "/v1/followers/00000000-0000-4000-8000-000000000000/api-keys"

    # Act
    rotated = await api.call("POST", b_keys, 404, token=a["api_key"])
    revoked = await api.call("DELETE", b_keys, 404, token=a["api_key"])
    unknown = await api.call("POST", nobody_keys, 404)

    # Assert
    assert rotated == NOT_FOUND
    assert revoked == NOT_FOUND
    assert unknown == NOT_FOUND
    assert await status_of(server, f"/v1/followers/{b['id']}", b["api_key"]) == 200
    assert await status_of(server, f"/v1/followers/{a['id']}", a["api_key"]) == 200


async def test_key_routes_need_a_credential(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    follower = await api.follower()
    path = f"/v1/followers/{follower['id']}/api-keys"

    # Act
    statuses = [(await server.http.request(m, path)).status_code for m in ("POST", "DELETE")]

    # Assert
    assert statuses == [401, 401]
    assert await status_of(server, f"/v1/followers/{follower['id']}", follower["api_key"]) == 200


# --- follower API keys: the open order feed ---------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "DELETE"])
async def test_rotation_or_revocation_closes_the_open_feed_with_1008(
    server: LiveServer, method: str
) -> None:
    # Arrange
    api = Api(server.http)
    follower = await api.follower()
    other = await api.follower("other")
    ws = await open_feed(server, follower["id"], follower["api_key"])
    bystander = await open_feed(server, other["id"], other["api_key"])

    # Act
    await api.call(
        method, f"/v1/followers/{follower['id']}/api-keys", 201 if method == "POST" else 204
    )
    code = await closed_with(ws)

    # Assert
    assert code == 1008
    await eventually(lambda: server.runtime.sockets.count(hash_secret(follower["api_key"])) == 0)
    assert server.runtime.sockets.count(hash_secret(other["api_key"])) == 1
    await bystander.ping()
    await bystander.close()


async def test_revocation_closes_the_feed_open_on_another_instance(
    server: LiveServer, second_server: LiveServer
) -> None:
    # Arrange
    api_on_second = Api(second_server.http)
    follower = await Api(server.http).follower()
    ws = await open_feed(server, follower["id"], follower["api_key"])
    await asyncio.wait_for(server.runtime.sockets.listening.wait(), timeout=5)

    # Act
    await api_on_second.call("DELETE", f"/v1/followers/{follower['id']}/api-keys", 204)
    code = await closed_with(ws)

    # Assert
    assert code == 1008


async def test_old_key_cannot_open_the_feed_after_rotation(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    follower = await api.follower()
    rotated = await api.call("POST", f"/v1/followers/{follower['id']}/api-keys", 201)
    url = f"{server.ws_url}/v1/followers/{follower['id']}/orders/ws?token="

    # Act
    async with connect(url + follower["api_key"]) as old:
        old_code = await closed_with(old)
    async with connect(url + rotated["api_key"]) as new:
        await eventually(lambda: server.runtime.sockets.count(hash_secret(rotated["api_key"])) == 1)
        await new.ping()

    # Assert
    assert old_code == 1008


# --- leader push tokens -----------------------------------------------------------------------


async def test_push_token_rotation_closes_the_push_socket_and_the_new_token_works(
    server: LiveServer,
) -> None:
    # Arrange
    api = Api(server.http)
    leader = await api.leader()
    path = f"/v1/leaders/{leader['id']}/push-token"
    old_token = leader["push_token"]

    # Act
    async with push_socket(server.ws_url, leader["id"], old_token) as ws:
        await eventually(lambda: server.runtime.sockets.count(hash_secret(old_token)) == 1)
        rotated = await api.call("POST", path, 201)
        code = await closed_with(ws)
    async with push_socket(server.ws_url, leader["id"], rotated["push_token"]) as ws:
        await ws.send('{"type": "equity", "equity": "1000"}')
        reply: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
    async with push_socket(server.ws_url, leader["id"], old_token) as ws:
        refused = await closed_with(ws)

    # Assert
    assert code == 1008
    assert set(rotated) == {"leader_id", "push_token"}
    assert rotated["push_token"].startswith("ctp_")
    assert reply["status"] == "accepted"
    assert refused == 1008


async def test_push_token_revocation_closes_the_socket_until_rotated(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    leader = await api.leader()
    path = f"/v1/leaders/{leader['id']}/push-token"
    token = leader["push_token"]

    # Act
    async with push_socket(server.ws_url, leader["id"], token) as ws:
        await eventually(lambda: server.runtime.sockets.count(hash_secret(token)) == 1)
        await api.call("DELETE", path, 204)
        code = await closed_with(ws)
    async with push_socket(server.ws_url, leader["id"], token) as ws:
        refused = await closed_with(ws)

    # Assert
    assert code == 1008
    assert refused == 1008


async def test_push_token_routes_are_admin_only_and_push_only(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    leader = await api.leader()
    generic = await api.leader("generic", {"kind": "generic", "url": "ws://127.0.0.1:1/feed"})
    follower = await api.follower()
    path = f"/v1/leaders/{leader['id']}/push-token"
    nobody = "/v1/leaders/00000000-0000-4000-8000-000000000000/push-token"

    # Act
    as_follower = [
        (await server.http.request(m, path, headers=bearer(follower["api_key"]))).status_code
        for m in ("POST", "DELETE")
    ]
    on_generic = await api.call("POST", f"/v1/leaders/{generic['id']}/push-token", 409)
    unknown = await api.call("DELETE", nobody, 404)

    # Assert
    assert as_follower == [403, 403]
    assert on_generic == {"detail": "leader feed is not push mode"}
    assert unknown == {"detail": "leader not found"}
    async with push_socket(server.ws_url, leader["id"], leader["push_token"]) as ws:
        await eventually(
            lambda: server.runtime.sockets.count(hash_secret(leader["push_token"])) == 1
        )
        await ws.ping()


async def test_deleting_a_leader_closes_its_push_socket(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    leader = await api.leader()
    token = leader["push_token"]

    # Act
    async with push_socket(server.ws_url, leader["id"], token) as ws:
        await eventually(lambda: server.runtime.sockets.count(hash_secret(token)) == 1)
        await api.call("DELETE", f"/v1/leaders/{leader['id']}", 204)
        code = await closed_with(ws)

    # Assert
    assert code == 1008
