"""Followers, their equity, subscriptions, orders and order feed, as admin or as themselves."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
from redis.asyncio import Redis
from websockets.asyncio.client import connect

from tests.support import (
    ADMIN_TOKEN,
    Api,
    LiveServer,
    bearer,
    eventually,
    feed_subscribed,
    fill_frame,
    push_socket,
    read_stream,
    send_frame,
)

ORDER_KEYS = {
    "limit_price",
    "time_in_force",
    "order_id",
    "follower_id",
    "leader_id",
    "subscription_id",
    "leader_fill_id",
    "symbol",
    "side",
    "qty",
    "type",
    "reduce_only",
    "status",
    "skip_reason",
    "filled_qty",
    "avg_price",
    "created_at",
    "dispatched_at",
    "valid_until",
    "sizing",
    "leader_fill",
}


@dataclass(frozen=True)
class Desk:
    """One push leader with equity 100000, one follower subscribed to it, BTCUSDT in 0.001 lots."""

    leader: dict[str, Any]
    follower: dict[str, Any]
    subscription: dict[str, Any]
    leader_equity: dict[str, Any]
    follower_equity: dict[str, Any] | None


async def open_desk(api: Api, follower_equity: str | None = "10000", multiplier: str = "1") -> Desk:
    leader = await api.leader()
    follower = await api.follower("Fiona")
    leader_equity = await api.leader_equity(leader["id"], "100000")
    reading = (
        await api.follower_equity(follower["id"], follower_equity) if follower_equity else None
    )
    await api.instrument("BTCUSDT", qty_step="0.001", min_qty="0.001", min_notional="5")
    subscription = await api.subscribe(follower["id"], leader["id"], multiplier)
    return Desk(leader, follower, subscription, leader_equity, reading)


async def push_fills(server: LiveServer, leader: dict[str, Any], *frames: str) -> None:
    """Send fills over the push socket; each must be acknowledged as accepted."""
    async with push_socket(server.ws_url, leader["id"], leader["push_token"]) as ws:
        for frame in frames:
            ack = await send_frame(ws, frame)
            assert ack == {
                "type": "ack",
                "fill_id": json.loads(frame)["fill_id"],
                "status": "accepted",
            }


async def orders_of(api: Api, follower_id: str, query: str = "") -> list[dict[str, Any]]:
    await api.settled_orders(follower_id)
    orders: list[dict[str, Any]] = await api.call(
        "GET", f"/v1/followers/{follower_id}/orders{query}", 200
    )
    return orders


# --- followers and their equity ---------------------------------------------------------------


async def test_create_follower_shows_api_key_only_once(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)

    # Act
    created = await api.call("POST", "/v1/followers", 201, json={"name": "Fiona"})
    as_admin = await api.call("GET", f"/v1/followers/{created['id']}", 200)
    as_self = await api.call("GET", f"/v1/followers/{created['id']}", 200, token=created["api_key"])

    # Assert
    assert set(created) == {"id", "name", "created_at", "api_key"}
    assert str(UUID(created["id"])) == created["id"]
    assert created["name"] == "Fiona"
    assert created["api_key"].startswith("ctf_")
    assert len(created["api_key"]) >= 40
    assert abs(datetime.now(UTC) - datetime.fromisoformat(created["created_at"])) < timedelta(
        minutes=1
    )
    expected = {"id": created["id"], "name": "Fiona", "created_at": created["created_at"]}
    assert as_admin == expected
    assert as_self == expected


async def test_follower_keys_are_distinct(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)

    # Act
    first = await api.follower("one")
    second = await api.follower("two")

    # Assert
    assert first["api_key"] != second["api_key"]


async def test_get_unknown_follower_is_404(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)

    # Act
    body = await api.call("GET", "/v1/followers/00000000-0000-4000-8000-000000000000", 404)

    # Assert
    assert body == {"detail": "follower not found"}


async def test_follower_equity_by_admin_and_by_self_is_stored(
    server: LiveServer, db: asyncpg.Connection
) -> None:
    # Arrange
    api = Api(server.http)
    follower = await api.follower()
    path = f"/v1/followers/{follower['id']}/equity"

    # Act
    by_admin = await api.call("POST", path, 201, json={"equity": "10000.10"})
    by_self = await api.call(
        "POST",
        path,
        201,
        token=follower["api_key"],
        json={"equity": 12000, "as_of": "2026-01-01T00:00:00Z"},
    )

    # Assert
    assert set(by_admin) == {"id", "equity", "as_of"}
    assert by_admin["equity"] == "10000.1"
    assert by_self == {"id": by_self["id"], "equity": "12000", "as_of": "2026-01-01T00:00:00Z"}
    rows = await db.fetch(
        "SELECT id, leader_id, follower_id, equity FROM equity_snapshot ORDER BY id"
    )
    assert [dict(row) for row in rows] == [
        {
            "id": by_admin["id"],
            "leader_id": None,
            "follower_id": UUID(follower["id"]),
            "equity": Decimal("10000.10"),
        },
        {
            "id": by_self["id"],
            "leader_id": None,
            "follower_id": UUID(follower["id"]),
            "equity": Decimal(12000),
        },
    ]


async def test_follower_equity_for_unknown_follower_is_404(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    path = "/v1/followers/00000000-0000-4000-8000-000000000000/equity"

    # Act
    body = await api.call("POST", path, 404, json={"equity": "1"})

    # Assert
    assert body == {"detail": "follower not found"}


# --- subscriptions ----------------------------------------------------------------------------


async def test_subscribe_returns_the_active_subscription(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    leader = await api.leader()
    follower = await api.follower()
    path = f"/v1/followers/{follower['id']}/subscriptions"

    # Act
    created = await api.call(
        "POST", path, 201, json={"leader_id": leader["id"], "multiplier": "1.50"}
    )
    listed = await api.call("GET", path, 200)

    # Assert
    assert created == {
        "id": created["id"],
        "leader_id": leader["id"],
        "follower_id": follower["id"],
        "multiplier": "1.5",
        "status": "active",
        "status_reason": None,
        "sizing": {},
        "created_at": created["created_at"],
        "open_positions": None,
        "symbols": [],
    }
    assert str(UUID(created["id"])) == created["id"]
    assert listed == [created]


async def test_subscribe_by_self_with_numeric_or_default_multiplier(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    first_leader = await api.leader("one")
    second_leader = await api.leader("two")
    follower = await api.follower()
    path = f"/v1/followers/{follower['id']}/subscriptions"
    key = follower["api_key"]

    # Act
    numeric = await api.call(
        "POST", path, 201, token=key, json={"leader_id": first_leader["id"], "multiplier": 0.25}
    )
    default = await api.call("POST", path, 201, token=key, json={"leader_id": second_leader["id"]})

    # Assert
    assert numeric["multiplier"] == "0.25"
    assert default["multiplier"] == "1"
    assert [s["leader_id"] for s in await api.call("GET", path, 200, token=key)] == [
        first_leader["id"],
        second_leader["id"],
    ]


async def test_second_live_subscription_to_same_leader_is_409(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    leader = await api.leader()
    follower = await api.follower()
    first = await api.subscribe(follower["id"], leader["id"])
    path = f"/v1/followers/{follower['id']}/subscriptions"
    await api.call("PATCH", f"{path}/{first['id']}", 200, json={"status": "paused"})

    # Act
    body = await api.call("POST", path, 409, json={"leader_id": leader["id"], "multiplier": "2"})

    # Assert
    assert body == {"detail": "leader_id: already subscribed to this leader"}
    assert [s["id"] for s in await api.call("GET", path, 200)] == [first["id"]]


async def test_subscribe_to_unknown_leader_is_404(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    follower = await api.follower()
    body = {"leader_id": "00000000-0000-4000-8000-000000000000", "multiplier": "1"}

    # Act
    reply = await api.call("POST", f"/v1/followers/{follower['id']}/subscriptions", 404, json=body)

    # Assert
    assert reply == {"detail": "leader_id: leader not found"}


async def test_patch_subscription_status_and_multiplier(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    leader = await api.leader()
    follower = await api.follower()
    sub = await api.subscribe(follower["id"], leader["id"], "1")
    path = f"/v1/followers/{follower['id']}/subscriptions/{sub['id']}"
    key = follower["api_key"]

    # Act
    paused = await api.call("PATCH", path, 200, json={"status": "paused"})
    rescaled = await api.call("PATCH", path, 200, token=key, json={"multiplier": 2.5})
    resumed = await api.call("PATCH", path, 200, json={"status": "active", "multiplier": "0.5"})
    unchanged = await api.call("PATCH", path, 200, json={})

    # Assert
    assert paused == {**sub, "status": "paused"}
    assert rescaled == {**sub, "status": "paused", "multiplier": "2.5"}
    assert resumed == {**sub, "status": "active", "multiplier": "0.5"}
    assert unchanged == resumed


async def test_delete_subscription_then_subscribe_again(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    leader = await api.leader()
    follower = await api.follower()
    sub = await api.subscribe(follower["id"], leader["id"])
    subs = f"/v1/followers/{follower['id']}/subscriptions"

    # Act
    response = await server.http.delete(f"{subs}/{sub['id']}", headers=bearer(follower["api_key"]))

    # Assert
    assert response.status_code == 204
    assert response.content == b""
    assert await api.call("GET", subs, 200) == []
    gone = {"detail": "subscription not found"}
    assert await api.call("DELETE", f"{subs}/{sub['id']}", 404) == gone
    assert await api.call("PATCH", f"{subs}/{sub['id']}", 404, json={"status": "active"}) == gone
    again = await api.subscribe(follower["id"], leader["id"], "3")
    assert again["id"] != sub["id"]
    assert again["status"] == "active"
    assert await api.call("GET", subs, 200) == [again]


async def test_unknown_subscription_is_404(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    follower = await api.follower()
    path = f"/v1/followers/{follower['id']}/subscriptions/00000000-0000-4000-8000-000000000000"

    # Act
    patched = await api.call("PATCH", path, 404, json={"status": "paused"})
    deleted = await api.call("DELETE", path, 404)

    # Assert
    assert patched == {"detail": "subscription not found"}
    assert deleted == {"detail": "subscription not found"}


# --- orders -----------------------------------------------------------------------------------


async def test_orders_list_one_order_with_its_sizing_inputs(
    server: LiveServer, redis: Redis
) -> None:
    # Arrange
    api = Api(server.http)
    desk = await open_desk(api)
    assert desk.follower_equity is not None

    # Act
    await push_fills(server, desk.leader, fill_frame("f-1", "BTCUSDT", "buy", "2", "50000"))
    orders = await orders_of(api, desk.follower["id"])

    # Assert
    assert len(orders) == 1
    order = orders[0]
    assert set(order) == ORDER_KEYS
    assert order["order_id"].startswith("ct")
    assert {
        k: order[k] for k in ORDER_KEYS - {"order_id", "created_at", "dispatched_at", "valid_until"}
    } == {
        "follower_id": desk.follower["id"],
        "leader_id": desk.leader["id"],
        "subscription_id": desk.subscription["id"],
        "leader_fill_id": "f-1",
        "symbol": "BTCUSDT",
        "side": "buy",
        "qty": "0.2",
        "type": "market",
        "reduce_only": False,
        "limit_price": None,
        "time_in_force": None,
        "status": "dispatched",
        "skip_reason": None,
        "filled_qty": "0",
        "avg_price": None,
        "sizing": {
            "mode": "target",
            "leader_equity": "100000",
            "leader_equity_snapshot_id": desk.leader_equity["id"],
            "follower_equity": "10000",
            "follower_equity_snapshot_id": desk.follower_equity["id"],
            "ratio": "0.1",
            "multiplier": "1",
            "effect": "open",
            "leader_position_before": "0",
            "leader_position_after": "2",
            "follower_position_before": "0",
            "follower_position_after": "0.2",
            "target": "0.2",
            "raw_qty": "0.2",
            "residue": "0",
            "clamps": [],
            "qty_step": "0.001",
            "leader_price": "50000",
            "skip_reason": None,
        },
        # A push fill says nothing of fees or flags: only what it was.
        "leader_fill": {
            "liquidation": False,
            "reduce_only": None,
            "fee": None,
            "fee_asset": None,
            "kind": "trade",
            "reason": None,
        },
    }
    created = datetime.fromisoformat(order["created_at"])
    assert created <= datetime.fromisoformat(order["dispatched_at"])
    assert created < datetime.fromisoformat(order["valid_until"])
    [streamed] = await read_stream(redis, desk.follower["id"])
    assert streamed["order_id"] == order["order_id"]
    assert datetime.fromisoformat(streamed["valid_until"]) == datetime.fromisoformat(
        order["valid_until"]
    )
    explained = await api.call("GET", streamed["explanation"], 200)
    assert (explained["sizing"], explained["created_at"]) == (order["sizing"], order["created_at"])


async def test_orders_newest_first_and_limited(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    desk = await open_desk(api)
    await push_fills(
        server,
        desk.leader,
        fill_frame("f-1", "BTCUSDT", "buy", "1", "50000"),
        fill_frame("f-2", "BTCUSDT", "sell", "0.5", "50000"),
        fill_frame("f-3", "BTCUSDT", "buy", "3", "50000"),
    )

    # Act
    default = await orders_of(api, desk.follower["id"])
    limited = await orders_of(api, desk.follower["id"], "?limit=2")
    widest = await orders_of(api, desk.follower["id"], "?limit=500")
    as_self = await api.call(
        "GET", f"/v1/followers/{desk.follower['id']}/orders", 200, token=desk.follower["api_key"]
    )

    # Assert
    assert [(o["leader_fill_id"], o["side"], o["qty"]) for o in default] == [
        ("f-3", "buy", "0.3"),
        ("f-2", "sell", "0.05"),
        ("f-1", "buy", "0.1"),
    ]
    assert [o["leader_fill_id"] for o in limited] == ["f-3", "f-2"]
    assert widest == default
    assert as_self == default


async def test_orders_of_a_follower_without_orders_is_empty(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    follower = await api.follower()

    # Act
    orders = await orders_of(api, follower["id"])

    # Assert
    assert orders == []


async def test_equity_inserted_with_sql_is_used_by_sizing(
    server: LiveServer, redis: Redis, db: asyncpg.Connection
) -> None:
    # Arrange
    api = Api(server.http)
    desk = await open_desk(api, follower_equity="10000")
    follower_id = UUID(desk.follower["id"])
    snapshot_id = await db.fetchval(
        "INSERT INTO equity_snapshot (follower_id, equity, as_of) "
        "VALUES ($1, $2, now()) RETURNING id",
        follower_id,
        Decimal("25100.0"),
    )

    def cache_has_sql_row() -> bool:
        reading = server.runtime.equity.follower(follower_id)
        return reading is not None and reading.snapshot_id == snapshot_id

    await eventually(cache_has_sql_row, "the equity cache takes the SQL row via NOTIFY")

    # Act
    await push_fills(server, desk.leader, fill_frame("f-1", "BTCUSDT", "buy", "2", "50000"))

    # Assert
    [order] = await orders_of(api, desk.follower["id"])
    assert order["status"] == "dispatched"
    assert order["qty"] == "0.502"
    assert order["sizing"]["follower_equity"] == "25100"
    assert order["sizing"]["follower_equity_snapshot_id"] == snapshot_id
    assert order["sizing"]["ratio"] == "0.251"
    assert order["sizing"]["raw_qty"] == "0.502"
    [streamed] = await read_stream(redis, desk.follower["id"])
    assert streamed["qty"] == "0.502"
    assert (await api.call("GET", streamed["explanation"], 200))["sizing"] == order["sizing"]


async def test_paused_subscription_produces_no_order_until_resumed(
    server: LiveServer, redis: Redis
) -> None:
    # Arrange
    api = Api(server.http)
    desk = await open_desk(api)
    path = f"/v1/followers/{desk.follower['id']}/subscriptions/{desk.subscription['id']}"
    await api.call("PATCH", path, 200, json={"status": "paused"})

    # Act
    await push_fills(server, desk.leader, fill_frame("f-1", "BTCUSDT", "buy", "2", "50000"))
    orders_while_paused = await orders_of(api, desk.follower["id"])
    stream_while_paused = await read_stream(redis, desk.follower["id"])
    await api.call("PATCH", path, 200, json={"status": "active"})
    await push_fills(server, desk.leader, fill_frame("f-2", "BTCUSDT", "buy", "2", "50000"))

    # Assert
    assert orders_while_paused == []
    assert stream_while_paused == []
    assert [o["leader_fill_id"] for o in await orders_of(api, desk.follower["id"])] == ["f-2"]
    assert [o["leader_fill_id"] for o in await read_stream(redis, desk.follower["id"])] == ["f-2"]


async def test_deleted_subscription_produces_no_order(server: LiveServer, redis: Redis) -> None:
    # Arrange
    api = Api(server.http)
    desk = await open_desk(api)
    path = f"/v1/followers/{desk.follower['id']}/subscriptions/{desk.subscription['id']}"
    await api.call("DELETE", path, 204)

    # Act
    await push_fills(server, desk.leader, fill_frame("f-1", "BTCUSDT", "buy", "2", "50000"))

    # Assert
    assert await orders_of(api, desk.follower["id"]) == []
    assert await read_stream(redis, desk.follower["id"]) == []


async def test_patched_multiplier_is_used_by_the_next_fill(
    server: LiveServer, redis: Redis
) -> None:
    # Arrange
    api = Api(server.http)
    desk = await open_desk(api, multiplier="1")
    path = f"/v1/followers/{desk.follower['id']}/subscriptions/{desk.subscription['id']}"
    await push_fills(server, desk.leader, fill_frame("f-1", "BTCUSDT", "buy", "2", "50000"))

    # Act
    await api.call("PATCH", path, 200, json={"multiplier": "2.5"})
    await push_fills(server, desk.leader, fill_frame("f-2", "BTCUSDT", "buy", "2", "50000"))

    # Assert: in target mode the new multiplier applies to the whole position at once:
    # leader 4 x 0.1 x 2.5 = 1, and the follower holds 0.2, so it buys 0.8.
    orders = await orders_of(api, desk.follower["id"])
    assert [(o["leader_fill_id"], o["qty"], o["sizing"]["multiplier"]) for o in orders] == [
        ("f-2", "0.8", "2.5"),
        ("f-1", "0.2", "1"),
    ]
    streamed = await read_stream(redis, desk.follower["id"])
    assert [(o["leader_fill_id"], o["qty"]) for o in streamed] == [("f-1", "0.2"), ("f-2", "0.8")]


async def test_skipped_orders_are_recorded_with_reason_but_not_streamed(
    server: LiveServer, redis: Redis
) -> None:
    # Arrange: one fill of 1 @ 1000 against leader equity 100000, lots of 0.001,
    # min qty 0.01 and min notional 100; each follower's equity lands on one outcome.
    api = Api(server.http)
    leader = await api.leader()
    await api.leader_equity(leader["id"], "100000")
    await api.instrument("ETHUSDT", qty_step="0.001", min_qty="0.01", min_notional="100")
    equities = {
        "no_equity": None,
        "rounds_to_zero": "50",  # 0.0005 -> 0
        "below_min_qty": "500",  # 0.005 < 0.01
        "below_min_notional": "5000",  # 0.05 x 1000 = 50 < 100
        "dispatched": "20000",  # 0.2 x 1000 = 200
    }
    followers: dict[str, str] = {}
    for outcome, equity in equities.items():
        follower = await api.follower(outcome)
        if equity is not None:
            await api.follower_equity(follower["id"], equity)
        await api.subscribe(follower["id"], leader["id"])
        followers[outcome] = follower["id"]

    # Act
    await push_fills(server, leader, fill_frame("f-1", "ETHUSDT", "buy", "1", "1000"))

    # Assert
    recorded = {}
    for outcome, follower_id in followers.items():
        [order] = await orders_of(api, follower_id)
        recorded[outcome] = (
            order["status"],
            order["skip_reason"],
            order["qty"],
            order["sizing"]["skip_reason"],
            order["sizing"]["raw_qty"],
            order["dispatched_at"] is None,
        )
    assert recorded == {
        "no_equity": ("skipped", "no_equity", "0", "no_equity", None, True),
        "rounds_to_zero": ("skipped", "rounds_to_zero", "0", "rounds_to_zero", "0.0005", True),
        "below_min_qty": ("skipped", "below_min_qty", "0", "below_min_qty", "0.005", True),
        "below_min_notional": (
            "skipped",
            "below_min_notional",
            "0",
            "below_min_notional",
            "0.05",
            True,
        ),
        "dispatched": ("dispatched", None, "0.2", None, "0.2", False),
    }
    streams = {outcome: await read_stream(redis, fid) for outcome, fid in followers.items()}
    assert {outcome: len(entries) for outcome, entries in streams.items()} == {
        "no_equity": 0,
        "rounds_to_zero": 0,
        "below_min_qty": 0,
        "below_min_notional": 0,
        "dispatched": 1,
    }


async def test_no_equity_sizing_names_the_missing_inputs(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    desk = await open_desk(api, follower_equity=None)

    # Act
    await push_fills(server, desk.leader, fill_frame("f-1", "BTCUSDT", "buy", "2", "50000"))

    # Assert
    [order] = await orders_of(api, desk.follower["id"])
    assert order["sizing"] == {
        "mode": "target",
        "leader_equity": "100000",
        "leader_equity_snapshot_id": desk.leader_equity["id"],
        "follower_equity": None,
        "follower_equity_snapshot_id": None,
        "ratio": None,
        "multiplier": "1",
        "effect": "open",
        "leader_position_before": "0",
        "leader_position_after": "2",
        "follower_position_before": "0",
        "follower_position_after": "0",
        "target": None,
        "raw_qty": None,
        "residue": "0",
        "clamps": [],
        "qty_step": "0.001",
        "leader_price": "50000",
        "skip_reason": "no_equity",
    }
    assert (order["qty"], order["status"]) == ("0", "skipped")


# --- order feed websocket ---------------------------------------------------------------------


async def test_order_feed_streams_own_orders_with_own_key(server: LiveServer, redis: Redis) -> None:
    # Arrange
    api = Api(server.http)
    desk = await open_desk(api)
    follower_id = desk.follower["id"]
    url = f"{server.ws_url}/v1/followers/{follower_id}/orders/ws"

    # Act
    async with connect(url, additional_headers=bearer(desk.follower["api_key"])) as feed:
        await feed_subscribed(redis, follower_id)
        await push_fills(server, desk.leader, fill_frame("f-1", "BTCUSDT", "buy", "2", "50000"))
        message = json.loads(await asyncio.wait_for(feed.recv(), timeout=5))

    # Assert
    [streamed] = await read_stream(redis, follower_id)
    assert message == {
        "type": "order",
        "status": "dispatched",
        "skip_reason": None,
        "order": streamed,
    }
    assert message["order"]["qty"] == "0.2"
    assert message["order"]["follower_id"] == follower_id


async def test_order_feed_admin_with_query_token_sees_skipped_orders(
    server: LiveServer, redis: Redis
) -> None:
    # Arrange
    api = Api(server.http)
    desk = await open_desk(api, follower_equity=None)
    follower_id = desk.follower["id"]
    url = f"{server.ws_url}/v1/followers/{follower_id}/orders/ws?token={ADMIN_TOKEN}"

    # Act
    async with connect(url) as feed:
        await feed_subscribed(redis, follower_id)
        await push_fills(server, desk.leader, fill_frame("f-1", "BTCUSDT", "buy", "2", "50000"))
        message = json.loads(await asyncio.wait_for(feed.recv(), timeout=5))

    # Assert
    [order] = await orders_of(api, follower_id)
    assert message["type"] == "order"
    assert message["status"] == "skipped"
    assert message["skip_reason"] == "no_equity"
    assert message["order"]["order_id"] == order["order_id"]
    assert message["order"]["qty"] == "0"
    explained = await api.call("GET", message["order"]["explanation"], 200)
    assert explained["sizing"] == order["sizing"]


async def test_order_feed_carries_only_that_followers_orders(
    server: LiveServer, redis: Redis
) -> None:
    # Arrange: fill f-1 only makes an order for B, fill f-2 one for A and B.
    api = Api(server.http)
    desk = await open_desk(api)
    other = await api.follower("other")
    await api.follower_equity(other["id"], "10000")
    await api.subscribe(other["id"], desk.leader["id"])
    a_id = desk.follower["id"]
    path = f"/v1/followers/{a_id}/subscriptions/{desk.subscription['id']}"
    url = f"{server.ws_url}/v1/followers/{a_id}/orders/ws"

    # Act
    async with connect(url, additional_headers=bearer(desk.follower["api_key"])) as feed:
        await feed_subscribed(redis, a_id)
        await api.call("PATCH", path, 200, json={"status": "paused"})
        await push_fills(server, desk.leader, fill_frame("f-1", "BTCUSDT", "buy", "2", "50000"))
        await api.call("PATCH", path, 200, json={"status": "active"})
        await push_fills(server, desk.leader, fill_frame("f-2", "BTCUSDT", "buy", "2", "50000"))
        message = json.loads(await asyncio.wait_for(feed.recv(), timeout=5))

    # Assert
    assert message["order"]["follower_id"] == a_id
    assert message["order"]["leader_fill_id"] == "f-2"
    assert len(await read_stream(redis, other["id"])) == 2
