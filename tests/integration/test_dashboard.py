"""The dashboard's server side: the page and its policy, /v1/dashboard scoped like the rest of
the API, the admin's all-orders websocket, and websocket credentials sent as a subprotocol."""

from __future__ import annotations

import asyncio
import base64
import fnmatch
import json
import re
import tomllib
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from tests.conftest import ROOT
from tests.integration.desk import Desk, Follower, push_fills, seed_desk
from tests.support import (
    ADMIN_TOKEN,
    Api,
    LiveServer,
    bearer,
    eventually,
    fill_frame,
    push_socket,
    send_frame,
)

V1 = Subprotocol("copytrade.v1")


def bearer_subprotocol(token: str) -> Subprotocol:
    """What the page sends: the credential, base64url without padding."""
    encoded = base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")
    return Subprotocol(f"bearer.{encoded}")


async def close_code(url: str, **kw: Any) -> int | None:
    """Open a websocket and return the close code the server ends it with."""
    async with connect(url, **kw) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), timeout=5)
    return closed.value.rcvd.code if closed.value.rcvd else None


async def next_message(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
    return message


async def two_followers(server: LiveServer) -> Desk:
    """A leader (equity 100000), followers A (multiplier 1) and B (2), equity 10000 each."""
    api = Api(server.http)
    desk = await seed_desk(api, followers=1)
    b = await api.follower("follower-b")
    await api.follower_equity(b["id"], "10000")
    await api.subscribe(b["id"], desk.leader_id, multiplier="2")
    return Desk(desk.leader_id, desk.push_token, [*desk.followers, Follower(b["id"], b["api_key"])])


# --- the page ---------------------------------------------------------------------------------


async def test_page_is_served_with_a_strict_content_security_policy(server: LiveServer) -> None:
    # Act
    page = await server.http.get("/")
    main = await server.http.get("/dashboard/js/main.js")

    # Assert
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert re.search(r"<script(?![^>]*\bsrc=)", page.text) is None, "an inline script"
    assert "style=" not in page.text
    assert main.status_code == 200
    assert "javascript" in main.headers["content-type"]


async def test_every_module_the_page_imports_is_served(server: LiveServer) -> None:
    # Arrange: follow the import graph from the page's entry module.
    seen: set[str] = set()
    todo = ["/dashboard/js/main.js"]

    # Act
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        response = await server.http.get(path)
        assert response.status_code == 200, path
        base = path.rsplit("/", 1)[0]
        for target in re.findall(r'from "(\.{1,2}/[^"]+)"', response.text):
            parts = [*base.split("/"), *target.split("/")]
            resolved: list[str] = []
            for part in parts:
                if part == "..":
                    resolved.pop()
                elif part != ".":
                    resolved.append(part)
            todo.append("/".join(resolved))

    # Assert
    assert len(seen) >= 8
    assert "/dashboard/js/views/orders.js" in seen


# --- /v1/dashboard ----------------------------------------------------------------------------


async def test_dashboard_data_of_a_follower_is_its_own_only(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    desk = await two_followers(server)
    a, b = desk.followers
    await push_fills(server, desk, fill_frame("f-1", "BTCUSDT", "buy", "2", "50000"))
    await api.settled_orders(b.id)

    # Act
    session = await api.call("GET", "/v1/dashboard/session", 200, a.api_key)
    followers = await api.call("GET", "/v1/dashboard/followers", 200, a.api_key)
    orders = await api.call("GET", "/v1/dashboard/orders", 200, a.api_key)
    exposure = await api.call("GET", "/v1/dashboard/exposure", 200, a.api_key)
    leaders = await api.call("GET", "/v1/dashboard/leaders", 403, a.api_key)
    anonymous = await server.http.get("/v1/dashboard/followers")

    # Assert
    assert session == {"role": "follower", "follower_id": a.id, "follower_name": "follower-0"}
    assert [f["id"] for f in followers] == [a.id]
    assert followers[0]["equity"] == "10000"
    assert [s["multiplier"] for s in followers[0]["subscriptions"]] == ["1"]
    assert [(o["follower_id"], o["leader_fill_id"], o["qty"]) for o in orders] == [
        (a.id, "f-1", "0.2")
    ]
    assert {row["follower_id"] for row in exposure} == {a.id}
    assert leaders == {"detail": "admin token required"}
    assert anonymous.status_code == 401


async def test_dashboard_data_of_the_admin_covers_every_account(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    desk = await two_followers(server)
    a, b = desk.followers
    await push_fills(server, desk, fill_frame("f-1", "BTCUSDT", "buy", "2", "50000"))
    await api.settled_orders(b.id)

    # Act
    session = await api.call("GET", "/v1/dashboard/session", 200)
    [leader] = await api.call("GET", "/v1/dashboard/leaders", 200)
    async with push_socket(server.ws_url, desk.leader_id, desk.push_token) as ws:
        await send_frame(ws, '{"type": "equity", "equity": "100000"}')  # the socket is served
        [pushing] = await api.call("GET", "/v1/dashboard/leaders", 200)
    followers = await api.call("GET", "/v1/dashboard/followers", 200)
    orders = await api.call("GET", "/v1/dashboard/orders", 200)

    # Assert
    assert session == {"role": "admin", "follower_id": None, "follower_name": None}
    assert (leader["id"], leader["equity"], leader["subscribers"]) == (desk.leader_id, "100000", 2)
    assert leader["push_sockets"] == 0  # push_fills has closed its socket
    assert pushing["push_sockets"] == 1
    assert leader["listener"] is None  # push mode: the leader connects to us
    assert [f["id"] for f in followers] == [a.id, b.id]
    assert sorted((o["follower_id"], o["qty"]) for o in orders) == sorted(
        [(a.id, "0.2"), (b.id, "0.4")]
    )


async def test_exposure_puts_each_follower_next_to_its_target(server: LiveServer) -> None:
    # Arrange: the leader holds 2 at 50000 on 100000 equity: exposure / equity 1.
    api = Api(server.http)
    desk = await two_followers(server)
    a, b = desk.followers
    await push_fills(server, desk, fill_frame("f-1", "BTCUSDT", "buy", "2", "50000"))

    # Act
    rows = await api.call("GET", "/v1/dashboard/exposure", 200)

    # Assert
    by_follower = {row["follower_id"]: row for row in rows}
    assert set(by_follower) == {a.id, b.id}
    expected = {
        a.id: ("0.2", "1", "1", "1"),  # position, leader ratio, target ratio, follower ratio
        b.id: ("0.4", "1", "2", "2"),  # multiplier 2
    }
    for follower_id, (position, leader, target, follower) in expected.items():
        row = by_follower[follower_id]
        assert (row["symbol"], row["leader_position"], row["mark_price"]) == (
            "BTCUSDT",
            "2",
            "50000",
        )
        assert row["follower_position"] == position
        assert (row["leader_ratio"], row["target_ratio"], row["follower_ratio"]) == (
            leader,
            target,
            follower,
        )


async def test_latency_histograms_count_the_fills(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    desk = await two_followers(server)
    before = await api.call("GET", "/v1/dashboard/latency", 200, desk.followers[0].api_key)

    # Act
    await push_fills(server, desk, fill_frame("f-1", "BTCUSDT", "buy", "2", "50000"))
    after = await api.call("GET", "/v1/dashboard/latency", 200, desk.followers[0].api_key)

    # Assert
    def counts(series: list[dict[str, Any]]) -> dict[Any, int]:
        return {item["stage"]: item["count"] for item in series}

    assert {"sized", "committed", "enqueued", None} <= set(counts(after))
    assert counts(after)[None] == counts(before).get(None, 0) + 1
    for item in after:
        assert sum(bucket["count"] for bucket in item["buckets"]) == item["count"]
        assert item["buckets"][-1]["le"] == "+Inf"


# --- websocket credentials as a subprotocol ---------------------------------------------------


async def test_follower_feed_takes_the_key_as_a_subprotocol(
    server: LiveServer, redis: Redis
) -> None:
    # Arrange
    desk = await two_followers(server)
    a = desk.followers[0]
    url = f"{server.ws_url}/v1/followers/{a.id}/orders/ws"

    # Act
    async with connect(url, subprotocols=[V1, bearer_subprotocol(a.api_key)]) as feed:
        await _subscribed(redis, f"copytrade:feed:{{{a.id}}}")
        await push_fills(server, desk, fill_frame("f-1", "BTCUSDT", "buy", "2", "50000"))
        message = await next_message(feed)
        chosen = feed.subprotocol

    # Assert: the server picks our protocol and never echoes the credential.
    assert chosen == V1
    assert (message["type"], message["status"]) == ("order", "dispatched")
    assert (message["order"]["follower_id"], message["order"]["qty"]) == (a.id, "0.2")


async def test_feed_refuses_a_wrong_or_other_followers_key_in_the_subprotocol(
    server: LiveServer,
) -> None:
    # Arrange
    desk = await two_followers(server)
    a, b = desk.followers
    b_feed = f"{server.ws_url}/v1/followers/{b.id}/orders/ws"
    attempts: dict[str, tuple[str, list[Subprotocol]]] = {
        "A's key on B": (b_feed, [V1, bearer_subprotocol(a.api_key)]),
        "unknown key": (b_feed, [V1, bearer_subprotocol("ctf_not-a-real-key")]),
        "not base64": (b_feed, [V1, Subprotocol("bearer.!!!")]),
        "push token": (b_feed, [V1, bearer_subprotocol(desk.push_token)]),
        "no credential": (b_feed, [V1]),
        "B's key on an unknown follower": (
            f"{server.ws_url}/v1/followers/{uuid.uuid4()}/orders/ws",
            [V1, bearer_subprotocol(b.api_key)],
        ),
    }

    # Act
    codes = {
        label: await close_code(url, subprotocols=protocols)
        for label, (url, protocols) in attempts.items()
    }

    # Assert
    assert codes == dict.fromkeys(attempts, 1008)


# --- the admin's all-orders feed --------------------------------------------------------------


async def test_admin_feed_sends_every_followers_orders_and_only_this_deployments(
    server: LiveServer, redis: Redis
) -> None:
    # Arrange
    desk = await two_followers(server)
    a, b = desk.followers
    url = f"{server.ws_url}/v1/orders/ws"
    foreign = str(uuid.uuid4())  # a follower of another deployment on the same Redis server
    foreign_order = {
        "type": "order",
        "status": "dispatched",
        "skip_reason": None,
        "order": {"order_id": "x" * 24, "follower_id": foreign},
    }

    # Act
    async with connect(url, subprotocols=[V1, bearer_subprotocol(ADMIN_TOKEN)]) as feed:
        await eventually(_pattern_subscribed(redis), "the admin feed's pattern subscription")
        await redis.publish(f"copytrade:feed:{{{foreign}}}", json.dumps(foreign_order))
        await redis.publish(
            f"copytrade:feed:{{{foreign}}}",
            json.dumps({"type": "order_status", "order_id": "x" * 24, "status": "filled"}),
        )
        await push_fills(server, desk, fill_frame("f-1", "BTCUSDT", "buy", "2", "50000"))
        messages = [await next_message(feed), await next_message(feed)]

    # Assert: the foreign messages, published first, were dropped.
    assert sorted((m["order"]["follower_id"], m["order"]["qty"]) for m in messages) == sorted(
        [(a.id, "0.2"), (b.id, "0.4")]
    )
    assert {m["status"] for m in messages} == {"dispatched"}


async def test_admin_feed_takes_the_header_too(server: LiveServer, redis: Redis) -> None:
    # Arrange
    desk = await two_followers(server)

    # Act
    async with connect(
        f"{server.ws_url}/v1/orders/ws", additional_headers=bearer(ADMIN_TOKEN)
    ) as feed:
        await eventually(_pattern_subscribed(redis), "the admin feed's pattern subscription")
        await push_fills(server, desk, fill_frame("f-1", "BTCUSDT", "buy", "2", "50000"))
        message = await next_message(feed)
        chosen = feed.subprotocol

    # Assert
    assert chosen is None
    assert message["order"]["leader_fill_id"] == "f-1"


async def test_admin_feed_refuses_follower_keys_with_1008(server: LiveServer) -> None:
    # Arrange
    desk = await two_followers(server)
    key = desk.followers[0].api_key
    url = f"{server.ws_url}/v1/orders/ws"
    attempts: dict[str, dict[str, Any]] = {
        "follower key as subprotocol": {"subprotocols": [V1, bearer_subprotocol(key)]},
        "follower key in header": {"additional_headers": bearer(key)},
        "wrong admin token": {"subprotocols": [V1, bearer_subprotocol(ADMIN_TOKEN + "x")]},
        "no credential": {},
    }

    # Act
    codes = {label: await close_code(url, **kw) for label, kw in attempts.items()}

    # Assert
    assert codes == dict.fromkeys(attempts, 1008)


def _pattern_subscribed(redis: Redis) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return int(await redis.pubsub_numpat()) >= 1

    return check


async def _subscribed(redis: Redis, channel: str) -> None:
    async def check() -> bool:
        return int((await redis.pubsub_numsub(channel))[0][1]) >= 1

    await eventually(check, f"a subscriber on {channel}")


def test_every_static_file_ships_with_the_package() -> None:
    # Arrange: pyproject's package-data globs for app.dashboard (wheels and `pip install .`).
    static = ROOT / "app" / "dashboard"
    with (ROOT / "pyproject.toml").open("rb") as f:
        globs = tomllib.load(f)["tool"]["setuptools"]["package-data"]["app.dashboard"]

    # Act
    files = [p.relative_to(static).as_posix() for p in static.rglob("*") if p.is_file()]
    missed = [
        name
        for name in files
        if name.startswith("static/") and not any(fnmatch.fnmatch(name, g) for g in globs)
    ]

    # Assert
    assert "static/index.html" in files
    assert missed == []
