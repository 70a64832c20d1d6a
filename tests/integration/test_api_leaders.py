"""Admin routes for leaders, leader equity and instruments: exact bodies, and what is stored."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.support import ADMIN, Api, LiveServer, bearer, fill_frame

LEADER_KEYS = {"id", "name", "status", "feed", "created_at", "listener"}
LISTENER_KEYS = {
    "kind",
    "state",
    "connected_at",
    "last_message_at",
    "reconnects",
    "last_error",
    "backfilled",
    "last_fill_at",
    "equity_at",
    "owner",
}
# Nothing listens on port 1: the generic listener keeps retrying, which is all these tests need.
UNREACHABLE_FEED = "ws://127.0.0.1:1/feed"


def is_recent(timestamp: str) -> bool:
    moment = datetime.fromisoformat(timestamp)
    return moment.tzinfo is not None and abs(datetime.now(UTC) - moment) < timedelta(minutes=1)


async def test_create_push_leader_returns_push_token_only_once(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    body = {"name": "Alice", "feed": {"kind": "push"}}

    # Act
    created = await api.call("POST", "/v1/leaders", 201, json=body)
    fetched = await api.call("GET", f"/v1/leaders/{created['id']}", 200)
    listed = await api.call("GET", "/v1/leaders", 200)

    # Assert
    assert set(created) == LEADER_KEYS | {"push_token"}
    assert str(UUID(created["id"])) == created["id"]
    assert created["name"] == "Alice"
    assert created["feed"] == {"kind": "push", "url": None, "config": None}
    assert created["listener"] is None
    assert is_recent(created["created_at"])
    assert created["push_token"].startswith("ctp_")
    assert len(created["push_token"]) >= 40
    without_token = {k: v for k, v in created.items() if k != "push_token"}
    assert fetched == without_token
    assert listed == [without_token]


async def test_push_tokens_are_distinct_per_leader(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)

    # Act
    first = await api.leader("one")
    second = await api.leader("two")

    # Assert
    assert first["id"] != second["id"]
    assert first["push_token"] != second["push_token"]


async def test_create_generic_leader_has_no_push_token_and_reports_its_listener(
    server: LiveServer,
) -> None:
    # Arrange
    api = Api(server.http)

    # Act
    created = await api.leader("Bob", {"kind": "generic", "url": UNREACHABLE_FEED})
    fetched = await api.call("GET", f"/v1/leaders/{created['id']}", 200)

    # Assert
    assert set(created) == LEADER_KEYS | {"push_token"}
    assert created["name"] == "Bob"
    assert created["feed"] == {"kind": "generic", "url": UNREACHABLE_FEED, "config": None}
    assert created["push_token"] is None
    assert set(fetched) == LEADER_KEYS
    assert fetched["feed"] == {"kind": "generic", "url": UNREACHABLE_FEED, "config": None}
    assert set(fetched["listener"]) == LISTENER_KEYS
    assert fetched["listener"]["state"] in {"starting", "connecting"}
    assert fetched["listener"]["connected_at"] is None


async def test_list_leaders_in_creation_order_with_paging(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    first = await api.leader("first")
    second = await api.leader("second")
    third = await api.leader("third")

    # Act
    everything = await api.call("GET", "/v1/leaders", 200)
    page = await api.call("GET", "/v1/leaders?limit=1&offset=1", 200)

    # Assert
    assert [leader["id"] for leader in everything] == [first["id"], second["id"], third["id"]]
    assert [leader["name"] for leader in everything] == ["first", "second", "third"]
    assert all(set(leader) == LEADER_KEYS for leader in everything)
    assert [leader["id"] for leader in page] == [second["id"]]


async def test_get_unknown_leader_is_404(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    unknown = "00000000-0000-4000-8000-000000000000"

    # Act
    body = await api.call("GET", f"/v1/leaders/{unknown}", 404)

    # Assert
    assert body == {"detail": "leader not found"}


async def test_delete_leader_hides_it_and_ends_its_subscriptions(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    leader = await api.leader("gone")
    kept = await api.leader("kept")
    follower = await api.follower()
    await api.subscribe(follower["id"], leader["id"])
    kept_sub = await api.subscribe(follower["id"], kept["id"])

    # Act
    response = await server.http.delete(f"/v1/leaders/{leader['id']}", headers=ADMIN)

    # Assert
    assert response.status_code == 204
    assert response.content == b""
    assert await api.call("GET", f"/v1/leaders/{leader['id']}", 404) == {
        "detail": "leader not found"
    }
    assert [x["id"] for x in await api.call("GET", "/v1/leaders", 200)] == [kept["id"]]
    assert await api.call("DELETE", f"/v1/leaders/{leader['id']}", 404) == {
        "detail": "leader not found"
    }
    subs = await api.call("GET", f"/v1/followers/{follower['id']}/subscriptions", 200)
    assert subs == [kept_sub]
    equity = {"equity": "1"}
    await api.call("POST", f"/v1/leaders/{leader['id']}/equity", 404, json=equity)
    again = {"leader_id": leader["id"], "multiplier": "1"}
    assert await api.call(
        "POST", f"/v1/followers/{follower['id']}/subscriptions", 404, json=again
    ) == {"detail": "leader_id: leader not found"}


async def test_deleted_leader_push_token_no_longer_connects(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    leader = await api.leader()
    await api.call("DELETE", f"/v1/leaders/{leader['id']}", 204)
    url = f"{server.ws_url}/v1/leaders/{leader['id']}/fills/ws"

    # Act
    async with connect(url, additional_headers=bearer(leader["push_token"])) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()

    # Assert
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008


async def test_delete_generic_leader_stops_its_listener(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    leader = await api.leader("generic", {"kind": "generic", "url": UNREACHABLE_FEED})
    before = (await api.call("GET", "/readyz", 200))["listeners"]

    # Act
    await api.call("DELETE", f"/v1/leaders/{leader['id']}", 204)
    after = (await api.call("GET", "/readyz", 200))["listeners"]

    # Assert
    assert list(before) == [leader["id"]]
    assert after == {}


async def test_leader_equity_is_stored_and_echoed_exactly(
    server: LiveServer, db: asyncpg.Connection
) -> None:
    # Arrange
    api = Api(server.http)
    leader = await api.leader()
    body = {"equity": "100000.50", "as_of": "2024-01-02T05:04:05+02:00"}

    # Act
    snapshot = await api.call("POST", f"/v1/leaders/{leader['id']}/equity", 201, json=body)

    # Assert
    assert snapshot == {"id": snapshot["id"], "equity": "100000.5", "as_of": "2024-01-02T03:04:05Z"}
    assert isinstance(snapshot["id"], int)
    row = await db.fetchrow(
        "SELECT leader_id, follower_id, equity, as_of FROM equity_snapshot WHERE id = $1",
        snapshot["id"],
    )
    assert row is not None
    assert dict(row) == {
        "leader_id": UUID(leader["id"]),
        "follower_id": None,
        "equity": Decimal("100000.50"),
        "as_of": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
    }


async def test_leader_equity_accepts_a_number_and_defaults_as_of_to_now(
    server: LiveServer,
) -> None:
    # Arrange
    api = Api(server.http)
    leader = await api.leader()

    # Act
    first = await api.call("POST", f"/v1/leaders/{leader['id']}/equity", 201, json={"equity": 2500})
    second = await api.call(
        "POST", f"/v1/leaders/{leader['id']}/equity", 201, json={"equity": 2600.25}
    )

    # Assert
    assert first["equity"] == "2500"
    assert second["equity"] == "2600.25"
    assert second["id"] > first["id"]
    assert is_recent(first["as_of"])
    assert set(first) == {"id", "equity", "as_of"}


async def test_leader_equity_for_unknown_leader_is_404(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    unknown = "00000000-0000-4000-8000-000000000000"

    # Act
    body = await api.call("POST", f"/v1/leaders/{unknown}/equity", 404, json={"equity": "1"})

    # Assert
    assert body == {"detail": "leader not found"}


async def test_put_instrument_creates_then_replaces_lot_rules(
    server: LiveServer, db: asyncpg.Connection
) -> None:
    # Arrange
    api = Api(server.http)
    rules = {"qty_step": "0.001", "min_qty": "0.010", "min_notional": "5"}

    # Act
    created = await api.call("PUT", "/v1/instruments/BTCUSDT", 200, json=rules)
    replaced = await api.call("PUT", "/v1/instruments/BTCUSDT", 200, json={"qty_step": 0.5})

    # Assert
    assert created == {
        "symbol": "BTCUSDT",
        "qty_step": "0.001",
        "min_qty": "0.01",
        "min_notional": "5",
        "price_step": None,
        "venue": None,
        "source": "operator",
    }
    assert replaced == {
        "symbol": "BTCUSDT",
        "qty_step": "0.5",
        "min_qty": "0",
        "min_notional": "0",
        "price_step": None,
        "venue": None,
        "source": "operator",
    }
    rows = await db.fetch("SELECT symbol, qty_step, min_qty, min_notional FROM instrument")
    assert [dict(row) for row in rows] == [
        {
            "symbol": "BTCUSDT",
            "qty_step": Decimal("0.5"),
            "min_qty": Decimal(0),
            "min_notional": Decimal(0),
        }
    ]


async def test_put_instrument_accepts_symbol_punctuation(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    symbols = ["ETH-PERP", "BTC.P:USDT", "x_1", "A" * 48]

    # Act
    bodies: list[dict[str, Any]] = [
        await api.call("PUT", f"/v1/instruments/{symbol}", 200, json={"qty_step": "1"})
        for symbol in symbols
    ]

    # Assert
    assert bodies == [
        {
            "symbol": symbol,
            "qty_step": "1",
            "min_qty": "0",
            "min_notional": "0",
            "price_step": None,
            "venue": None,
            "source": "operator",
        }
        for symbol in symbols
    ]


async def test_pausing_a_push_leader_closes_its_socket_and_refuses_fills_until_resumed(
    server: LiveServer,
) -> None:
    # Arrange
    api = Api(server.http)
    leader = await api.leader()
    await api.leader_equity(leader["id"], "100000")
    url = f"{server.ws_url}/v1/leaders/{leader['id']}/fills/ws"
    headers = bearer(leader["push_token"])

    # Act: pause while a socket is open, then try to connect again.
    async with connect(url, additional_headers=headers) as ws:
        await api.call("PATCH", f"/v1/leaders/{leader['id']}", 200, json={"status": "paused"})
        with pytest.raises(ConnectionClosed) as open_socket:
            await ws.recv()
    async with connect(url, additional_headers=headers) as ws:
        with pytest.raises(ConnectionClosed) as new_socket:
            await ws.recv()
    await api.call("PATCH", f"/v1/leaders/{leader['id']}", 200, json={"status": "active"})
    async with connect(url, additional_headers=headers) as ws:
        await ws.send(fill_frame("f-1", "BTCUSDT", "buy", "1", "50000"))
        ack = json.loads(await ws.recv())

    # Assert
    assert open_socket.value.rcvd is not None
    assert open_socket.value.rcvd.code == 1008
    assert new_socket.value.rcvd is not None
    assert new_socket.value.rcvd.code == 1008
    assert new_socket.value.rcvd.reason == "leader paused"
    assert ack == {"type": "ack", "fill_id": "f-1", "status": "accepted"}
