"""Who may call what: 401 without a valid token, 403 for a follower on admin routes, 404 for a
follower on another follower's resources; the same rules on both websockets; public routes."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.support import (
    ADMIN,
    ADMIN_TOKEN,
    Api,
    LiveServer,
    bearer,
    fill_frame,
    push_socket,
    send_frame,
)

NOBODY = "00000000-0000-4000-8000-000000000000"
NOT_FOUND = {"detail": "follower not found"}
FORBIDDEN = {"detail": "admin token required"}
UNAUTHORIZED = {"detail": "missing or invalid bearer token"}


@dataclass(frozen=True)
class World:
    """A push leader and two followers A and B, each subscribed to it with one order."""

    leader: dict[str, Any]
    a: dict[str, Any]
    b: dict[str, Any]
    a_sub: dict[str, Any]
    b_sub: dict[str, Any]
    a_order: str
    b_order: str


async def make_world(server: LiveServer) -> World:
    api = Api(server.http)
    leader = await api.leader()
    await api.leader_equity(leader["id"], "100000")
    a = await api.follower("A")
    b = await api.follower("B")
    a_sub = await api.subscribe(a["id"], leader["id"])
    b_sub = await api.subscribe(b["id"], leader["id"])
    for follower in (a, b):
        await api.follower_equity(follower["id"], "10000")
    async with push_socket(server.ws_url, leader["id"], leader["push_token"]) as ws:
        ack = await send_frame(ws, fill_frame("f-1", "BTCUSDT", "buy", "1", "50000"))
    assert ack["status"] == "accepted"
    [a_order] = await api.call("GET", f"/v1/followers/{a['id']}/orders", 200)
    [b_order] = await api.settled_orders(b["id"])
    return World(leader, a, b, a_sub, b_sub, a_order["order_id"], b_order["order_id"])


Route = tuple[str, str, dict[str, Any] | None]


def follower_routes(follower_id: str, sub_id: str, leader_id: str, order_id: str) -> list[Route]:
    """Every route a follower key may read or change on its own follower, but reports."""
    base = f"/v1/followers/{follower_id}"
    return [
        ("GET", base, None),
        ("POST", f"{base}/equity", {"equity": "5000"}),
        ("POST", f"{base}/subscriptions", {"leader_id": leader_id, "multiplier": "2"}),
        ("GET", f"{base}/subscriptions", None),
        ("PATCH", f"{base}/subscriptions/{sub_id}", {"status": "paused", "multiplier": "9"}),
        ("DELETE", f"{base}/subscriptions/{sub_id}", None),
        ("GET", f"{base}/orders", None),
        ("GET", f"{base}/orders?limit=10", None),
        ("GET", f"{base}/orders/{order_id}", None),
        ("GET", f"{base}/positions", None),
    ]


def report_route(follower_id: str, order_id: str) -> Route:
    """The executor's report on an order: checked for refusals only."""
    body = {"status": "accepted"}
    return ("POST", f"/v1/followers/{follower_id}/orders/{order_id}/reports", body)


def admin_routes(leader_id: str) -> list[Route]:
    return [
        ("POST", "/v1/leaders", {"name": "x", "feed": {"kind": "push"}}),
        ("GET", "/v1/leaders", None),
        ("GET", f"/v1/leaders/{leader_id}", None),
        ("DELETE", f"/v1/leaders/{leader_id}", None),
        ("POST", f"/v1/leaders/{leader_id}/equity", {"equity": "1"}),
        ("PUT", "/v1/instruments/BTCUSDT", {"qty_step": "0.001"}),
        ("POST", "/v1/followers", {"name": "x"}),
    ]


async def call_all(
    api: Api, routes: list[Route], headers: dict[str, str]
) -> dict[str, tuple[int, Any]]:
    """Call each route; return "METHOD path" -> (status, body)."""
    seen: dict[str, tuple[int, Any]] = {}
    for method, path, body in routes:
        response = await api.http.request(method, path, headers=headers, json=body)
        seen[f"{method} {path}"] = (
            response.status_code,
            response.json() if response.content else None,
        )
    return seen


async def counts(db: asyncpg.Connection) -> dict[str, int]:
    tables = ("leader", "follower", "equity_snapshot", "instrument", "subscription")
    return {t: await db.fetchval(f"SELECT count(*) FROM {t}") for t in tables}


async def close_code(url: str, headers: dict[str, str] | None = None) -> int | None:
    """Open a websocket and return the close code the server ends it with."""
    async with connect(url, additional_headers=headers) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), timeout=5)
    return closed.value.rcvd.code if closed.value.rcvd else None


# --- 404: a follower key on another follower's resources -------------------------------------


async def test_follower_key_on_other_followers_routes_is_404(
    server: LiveServer, db: asyncpg.Connection
) -> None:
    # Arrange
    api = Api(server.http)
    world = await make_world(server)
    other_leader = await api.leader("other")
    routes = follower_routes(world.b["id"], world.b_sub["id"], other_leader["id"], world.b_order)
    routes.append(report_route(world.b["id"], world.b_order))
    routes += follower_routes(NOBODY, world.b_sub["id"], other_leader["id"], world.b_order)
    before = await counts(db)
    b_orders = await api.call("GET", f"/v1/followers/{world.b['id']}/orders", 200)

    # Act
    seen = await call_all(api, routes, bearer(world.a["api_key"]))

    # Assert
    assert seen == {f"{method} {path}": (404, NOT_FOUND) for method, path, _ in routes}
    assert await counts(db) == before
    b_subs = await api.call("GET", f"/v1/followers/{world.b['id']}/subscriptions", 200)
    assert b_subs == [world.b_sub]
    assert await api.call("GET", f"/v1/followers/{world.b['id']}/orders", 200) == b_orders


async def test_follower_key_on_other_followers_subscription_via_own_path_is_404(
    server: LiveServer,
) -> None:
    # Arrange
    api = Api(server.http)
    world = await make_world(server)
    path = f"/v1/followers/{world.a['id']}/subscriptions/{world.b_sub['id']}"
    key = world.a["api_key"]

    # Act
    patched = await api.call("PATCH", path, 404, token=key, json={"status": "paused"})
    deleted = await api.call("DELETE", path, 404, token=key)

    # Assert
    assert patched == {"detail": "subscription not found"}
    assert deleted == {"detail": "subscription not found"}
    b_subs = await api.call("GET", f"/v1/followers/{world.b['id']}/subscriptions", 200)
    assert b_subs == [world.b_sub]


async def test_follower_key_reaches_every_own_route(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    world = await make_world(server)
    other_leader = await api.leader("other")
    routes = follower_routes(world.a["id"], world.a_sub["id"], other_leader["id"], world.a_order)

    # Act
    seen = await call_all(api, routes, bearer(world.a["api_key"]))

    # Assert
    assert {route: status for route, (status, _) in seen.items()} == {
        f"GET /v1/followers/{world.a['id']}": 200,
        f"POST /v1/followers/{world.a['id']}/equity": 201,
        f"POST /v1/followers/{world.a['id']}/subscriptions": 201,
        f"GET /v1/followers/{world.a['id']}/subscriptions": 200,
        f"PATCH /v1/followers/{world.a['id']}/subscriptions/{world.a_sub['id']}": 200,
        f"DELETE /v1/followers/{world.a['id']}/subscriptions/{world.a_sub['id']}": 204,
        f"GET /v1/followers/{world.a['id']}/orders": 200,
        f"GET /v1/followers/{world.a['id']}/orders?limit=10": 200,
        f"GET /v1/followers/{world.a['id']}/orders/{world.a_order}": 200,
        f"GET /v1/followers/{world.a['id']}/positions": 200,
    }


async def test_admin_token_reaches_every_follower_route(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    world = await make_world(server)
    other_leader = await api.leader("other")
    routes = follower_routes(world.b["id"], world.b_sub["id"], other_leader["id"], world.b_order)

    # Act
    seen = await call_all(api, routes, ADMIN)

    # Assert
    statuses = [status for status, _ in seen.values()]
    assert statuses == [200, 201, 201, 200, 200, 204, 200, 200, 200, 200]


# --- 403: a follower key on admin routes ------------------------------------------------------


async def test_follower_key_on_admin_routes_is_403(
    server: LiveServer, db: asyncpg.Connection
) -> None:
    # Arrange
    api = Api(server.http)
    world = await make_world(server)
    routes = admin_routes(world.leader["id"])
    before = await counts(db)

    # Act
    seen = await call_all(api, routes, bearer(world.a["api_key"]))

    # Assert
    assert seen == {f"{method} {path}": (403, FORBIDDEN) for method, path, _ in routes}
    assert await counts(db) == before
    assert await api.call("GET", f"/v1/leaders/{world.leader['id']}", 200)


# --- 401: no token or an invalid one ----------------------------------------------------------


async def test_every_route_without_token_is_401_with_bearer_challenge(
    server: LiveServer, db: asyncpg.Connection
) -> None:
    # Arrange
    world = await make_world(server)
    routes = admin_routes(world.leader["id"])
    routes += follower_routes(world.a["id"], world.a_sub["id"], world.leader["id"], world.a_order)
    routes.append(report_route(world.a["id"], world.a_order))
    before = await counts(db)

    # Act
    seen: dict[str, tuple[int, Any, str | None]] = {}
    for method, path, body in routes:
        response = await server.http.request(method, path, json=body)
        seen[f"{method} {path}"] = (
            response.status_code,
            response.json(),
            response.headers.get("www-authenticate"),
        )

    # Assert
    assert seen == {f"{method} {path}": (401, UNAUTHORIZED, "Bearer") for method, path, _ in routes}
    assert await counts(db) == before


async def test_invalid_credentials_are_401(server: LiveServer) -> None:
    # Arrange
    world = await make_world(server)
    credentials = {
        "unknown token": "Bearer not-a-token",
        "forged follower key": "Bearer ctf_forged0000000000000000000000000000000000",
        "push token": f"Bearer {world.leader['push_token']}",
        "admin token, wrong scheme": f"Basic {ADMIN_TOKEN}",
        "admin token, no scheme": ADMIN_TOKEN,
        "admin token with a suffix": f"Bearer {ADMIN_TOKEN}x",
        "scheme only": "Bearer",
        "follower key, wrong scheme": f"Token {world.a['api_key']}",
    }
    paths = ["/v1/leaders", f"/v1/followers/{world.a['id']}"]

    # Act
    seen = {
        (label, path): (await server.http.get(path, headers={"Authorization": value})).status_code
        for label, value in credentials.items()
        for path in paths
    }

    # Assert
    assert seen == {(label, path): 401 for label in credentials for path in paths}


async def test_bearer_scheme_is_case_insensitive(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    await api.leader()

    # Act
    response = await server.http.get(
        "/v1/leaders", headers={"Authorization": f"bearer {ADMIN_TOKEN}"}
    )

    # Assert
    assert response.status_code == 200
    assert len(response.json()) == 1


# --- websockets -------------------------------------------------------------------------------


async def test_order_feed_refuses_with_1008(server: LiveServer) -> None:
    # Arrange
    world = await make_world(server)
    feed = f"{server.ws_url}/v1/followers/{{}}/orders/ws"
    b_feed = feed.format(world.b["id"])
    a_key = world.a["api_key"]
    attempts: dict[str, tuple[str, dict[str, str] | None]] = {
        "A's key in header on B": (b_feed, bearer(a_key)),
        "A's key in query on B": (f"{b_feed}?token={a_key}", None),
        "no token": (b_feed, None),
        "bad token": (b_feed, bearer("ctf_not-a-real-key")),
        "bad query token": (f"{b_feed}?token=nope", None),
        "push token": (b_feed, bearer(world.leader["push_token"])),
        "admin on unknown follower": (feed.format(NOBODY), ADMIN),
        "A's key on unknown follower": (feed.format(NOBODY), bearer(a_key)),
    }

    # Act
    codes = {label: await close_code(url, headers) for label, (url, headers) in attempts.items()}

    # Assert
    assert codes == dict.fromkeys(attempts, 1008)


async def test_push_socket_refuses_with_1008(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    world = await make_world(server)
    second = await api.leader("second")
    generic = await api.leader("generic", {"kind": "generic", "url": "ws://127.0.0.1:1/feed"})
    fills = f"{server.ws_url}/v1/leaders/{{}}/fills/ws"
    first_url = fills.format(world.leader["id"])
    attempts: dict[str, tuple[str, dict[str, str] | None]] = {
        "wrong push token": (first_url, bearer("ctp_wrong")),
        "no token": (first_url, None),
        "another leader's token": (first_url, bearer(second["push_token"])),
        "another leader's token in query": (f"{first_url}?token={second['push_token']}", None),
        "admin token": (first_url, ADMIN),
        "follower key": (first_url, bearer(world.a["api_key"])),
        "unknown leader": (fills.format(NOBODY), bearer(world.leader["push_token"])),
        "generic leader": (fills.format(generic["id"]), bearer(world.leader["push_token"])),
    }

    # Act
    codes = {label: await close_code(url, headers) for label, (url, headers) in attempts.items()}

    # Assert
    assert codes == dict.fromkeys(attempts, 1008)


async def test_push_socket_accepts_token_in_query(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    leader = await api.leader()
    url = f"{server.ws_url}/v1/leaders/{leader['id']}/fills/ws?token={leader['push_token']}"

    # Act
    async with connect(url) as ws:
        await ws.send('{"type": "equity", "equity": "1000"}')
        reply = json.loads(await asyncio.wait_for(ws.recv(), timeout=5))

    # Assert
    assert reply == {
        "type": "ack",
        "equity_snapshot_id": reply["equity_snapshot_id"],
        "status": "accepted",
    }
    assert isinstance(reply["equity_snapshot_id"], int)


# --- public routes ----------------------------------------------------------------------------


async def test_health_and_readiness_need_no_token(server: LiveServer) -> None:
    # Arrange
    http = server.http

    # Act
    health = await http.get("/healthz")
    ready = await http.get("/readyz")

    # Assert
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert body["postgres"] == "ok"
    assert body["redis"] == "ok"
    assert body["listeners"] == {}
    assert body["executors"] == {}
    assert set(body) == {
        "status",
        "postgres",
        "redis",
        "equity_listen",
        "outbox_backlog",
        "listeners",
        "executors",
        "push_feeds",
        "draining",
    }
    assert body["push_feeds"] == {}
    assert body["draining"] is False


async def test_docs_and_openapi_are_reachable(server: LiveServer) -> None:
    # Arrange
    http = server.http

    # Act
    docs = await http.get("/docs")
    spec = await http.get("/openapi.json")

    # Assert
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in docs.text
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    assert {
        "/healthz",
        "/readyz",
        "/v1/leaders",
        "/v1/leaders/{leader_id}",
        "/v1/leaders/{leader_id}/equity",
        "/v1/instruments/{symbol}",
        "/v1/followers",
        "/v1/followers/{follower_id}",
        "/v1/followers/{follower_id}/equity",
        "/v1/followers/{follower_id}/subscriptions",
        "/v1/followers/{follower_id}/subscriptions/{subscription_id}",
        "/v1/followers/{follower_id}/orders",
    } <= set(paths)
    assert set(paths["/v1/followers/{follower_id}/subscriptions/{subscription_id}"]) == {
        "patch",
        "delete",
    }


async def test_metrics_are_prometheus_text(server: LiveServer) -> None:
    # Arrange
    http = server.http

    # Act
    response = await http.get("/metrics")

    # Assert
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE copytrade_fills_total counter" in response.text
    assert "# TYPE copytrade_feed_sockets gauge" in response.text
    assert "# TYPE copytrade_fill_seconds histogram" in response.text
    lines = [line for line in response.text.splitlines() if line and not line.startswith("#")]
    assert lines
    assert all(len(line.rsplit(" ", 1)) == 2 for line in lines)
