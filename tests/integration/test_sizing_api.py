"""Subscription sizing settings over the API, and every control end to end through a push fill.

Each control test pushes leader fills over the push websocket of the in-process server and
checks the orders as recorded (GET orders, with their sizing explanation) and as streamed.
Leader equity is 100000 throughout; BTCUSDT trades in 0.001 lots unless a test says otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
from redis.asyncio import Redis

from tests.support import (
    ADMIN,
    Api,
    LiveServer,
    eventually,
    fill_frame,
    push_socket,
    read_stream,
    send_frame,
)

Fill = tuple[str, str, str, str, str]  # (fill_id, symbol, side, qty, price)
Leg = tuple[str, str, str, bool]  # (side, qty, type, reduce_only)


@dataclass(frozen=True)
class Copier:
    """A push leader (equity 100000) and one follower subscribed to it."""

    leader: dict[str, Any]
    follower: dict[str, Any]
    subscription: dict[str, Any]
    leader_equity: dict[str, Any]
    follower_equity: dict[str, Any] | None

    @property
    def follower_id(self) -> str:
        return str(self.follower["id"])

    @property
    def key(self) -> str:
        return str(self.follower["api_key"])

    @property
    def subscription_path(self) -> str:
        return f"/v1/followers/{self.follower_id}/subscriptions/{self.subscription['id']}"


async def copier(
    api: Api,
    sizing: dict[str, Any] | None = None,
    follower_equity: str | None = "10000",
    multiplier: str = "1",
    leader: dict[str, Any] | None = None,
) -> Copier:
    if leader is None:
        leader = await api.leader()
        leader_equity = await api.leader_equity(leader["id"], "100000")
        await api.instrument("BTCUSDT", qty_step="0.001", min_qty="0.001", min_notional="5")
    else:
        leader_equity = {}
    follower = await api.follower()
    reading = (
        await api.follower_equity(follower["id"], follower_equity) if follower_equity else None
    )
    body: dict[str, Any] = {"leader_id": leader["id"], "multiplier": multiplier}
    if sizing is not None:
        body["sizing"] = sizing
    sub = await api.call("POST", f"/v1/followers/{follower['id']}/subscriptions", 201, json=body)
    return Copier(leader, follower, sub, leader_equity, reading)


async def push(server: LiveServer, leader: dict[str, Any], *fills: Fill) -> None:
    """Push fills over the leader's websocket; each must be accepted."""
    async with push_socket(server.ws_url, leader["id"], leader["push_token"]) as ws:
        for fill in fills:
            ack = await send_frame(ws, fill_frame(*fill))
            assert ack == {"type": "ack", "fill_id": fill[0], "status": "accepted"}


def btc(fill_id: str, side: str, qty: str, price: str = "50000") -> Fill:
    return (fill_id, "BTCUSDT", side, qty, price)


def eth(fill_id: str, side: str, qty: str, price: str = "3000") -> Fill:
    return (fill_id, "ETHUSDT", side, qty, price)


async def orders_by_fill(api: Api, follower_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every order of the follower once none is pending, per leader fill; a reversal's
    reduce_only close before its opening leg."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for order in await api.settled_orders(follower_id):
        grouped.setdefault(order["leader_fill_id"], []).append(order)
    return {
        fill_id: sorted(orders, key=lambda o: not o["reduce_only"])
        for fill_id, orders in grouped.items()
    }


def legs(orders: list[dict[str, Any]]) -> list[Leg]:
    return [(o["side"], o["qty"], o["type"], o["reduce_only"]) for o in orders]


def skipped(orders: list[dict[str, Any]]) -> tuple[str, str | None, str]:
    [order] = orders
    return order["status"], order["skip_reason"], order["qty"]


async def streamed(redis: Redis, follower_id: str) -> list[tuple[str, str, str, str, bool]]:
    return [
        (o["leader_fill_id"], o["symbol"], o["side"], o["qty"], o["reduce_only"])
        for o in await read_stream(redis, follower_id)
    ]


async def positions(api: Api, c: Copier) -> dict[str, dict[str, Any]]:
    rows = await api.call("GET", f"/v1/followers/{c.follower_id}/positions", 200, token=c.key)
    return {row["symbol"]: row for row in rows}


# --- settings over the API -------------------------------------------------------------------


async def test_sizing_settings_round_trip_and_are_stored_without_defaults(
    server: LiveServer, db: asyncpg.Connection
) -> None:
    # Arrange
    api = Api(server.http)
    leader = await api.leader()
    other = await api.leader("other")
    follower = await api.follower()
    subs = f"/v1/followers/{follower['id']}/subscriptions"
    sizing = {
        "mode": "target",
        "max_order_notional": 5000,
        "max_position_notional": "20000",
        "max_leverage": "3",
        "symbols": {
            "allow": ["BTCUSDT", "ETHUSDT"],
            "deny": ["ETHUSDT"],
            "map": {"BTCUSDT": "BTC-USDT-SWAP"},
        },
        "max_slippage": "0.005",
        "max_equity_age_s": 300,
        "equity_floor": "2500",
        "drift": "resync",
        "drift_tolerance": "0.02",
        "drift_min_interval_s": 30,
    }
    stored = {k: v for k, v in sizing.items() if k != "mode"} | {"max_order_notional": "5000"}
    lean = {"mode": "per_fill", "symbols": {"allow": ["BTCUSDT"], "deny": [], "map": {}}}

    # Act
    full = await api.call("POST", subs, 201, json={"leader_id": leader["id"], "sizing": sizing})
    small = await api.call("POST", subs, 201, json={"leader_id": other["id"], "sizing": lean})
    listed = await api.call("GET", subs, 200, token=follower["api_key"])
    one = f"{subs}/{full['id']}"
    replaced = await api.call(
        "PATCH", one, 200, json={"sizing": {"mode": "fixed_notional", "notional": "250"}}
    )
    paused = await api.call("PATCH", one, 200, token=follower["api_key"], json={"status": "paused"})
    reset = await api.call("PATCH", f"{subs}/{small['id']}", 200, json={"sizing": {}})
    rows = {
        str(r["id"]): json.loads(r["sizing"])
        for r in await db.fetch("SELECT id, sizing FROM subscription")
    }

    # Assert
    assert full["sizing"] == stored
    assert small["sizing"] == {"mode": "per_fill", "symbols": {"allow": ["BTCUSDT"]}}
    assert {s["id"]: s["sizing"] for s in listed} == {
        full["id"]: stored,
        small["id"]: small["sizing"],
    }
    assert replaced == {**full, "sizing": {"mode": "fixed_notional", "notional": "250"}}
    assert paused == {**replaced, "status": "paused"}
    assert reset == {**small, "sizing": {}}
    assert rows == {full["id"]: paused["sizing"], small["id"]: {}}


async def test_empty_symbols_object_is_stored_as_the_default(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    leader = await api.leader()
    follower = await api.follower()
    body = {"leader_id": leader["id"], "sizing": {"symbols": {}}}

    # Act
    sub = await api.call("POST", f"/v1/followers/{follower['id']}/subscriptions", 201, json=body)

    # Assert
    assert sub["sizing"] == {}


INVALID_SIZING: list[tuple[str, dict[str, Any], list[Any], str]] = [
    # (label, sizing, loc, a fragment of the message)
    (
        "fixed_notional without notional",
        {"mode": "fixed_notional"},
        ["body", "sizing", "notional"],
        "notional: required when mode is fixed_notional",
    ),
    ("unknown mode", {"mode": "mirror"}, ["body", "sizing", "mode"], "Input should be"),
    ("unknown rounding", {"rounding": "up"}, ["body", "sizing", "rounding"], "Input should be"),
    ("max_slippage of 1", {"max_slippage": 1}, ["body", "sizing", "max_slippage"], "less than 1"),
    (
        "max_slippage over 1",
        {"max_slippage": "1.5"},
        ["body", "sizing", "max_slippage"],
        "less than 1",
    ),
    (
        "negative equity_floor",
        {"equity_floor": "-1"},
        ["body", "sizing", "equity_floor"],
        "greater than or equal to 0",
    ),
    (
        "zero max_order_notional",
        {"max_order_notional": "0"},
        ["body", "sizing", "max_order_notional"],
        "greater than 0",
    ),
    (
        "bad symbol as a map value",
        {"symbols": {"map": {"BTCUSDT": "BTC USDT"}}},
        ["body", "sizing", "symbols", "map", "BTCUSDT"],
        "String should match pattern",
    ),
    (
        "bad symbol as a map key",
        {"symbols": {"map": {"BTC/USDT": "BTCUSDT"}}},
        ["body", "sizing", "symbols", "map", "BTC/USDT", "[key]"],
        "String should match pattern",
    ),
    (
        "bad symbol in deny",
        {"symbols": {"deny": ["ETH USDT"]}},
        ["body", "sizing", "symbols", "deny", 0],
        "String should match pattern",
    ),
    ("unknown key in sizing", {"leverage": 3}, ["body", "sizing", "leverage"], "Extra inputs"),
    ("unknown drift mode", {"drift": "ignore"}, ["body", "sizing", "drift"], "Input should be"),
    (
        "drift_tolerance of 1",
        {"drift_tolerance": "1"},
        ["body", "sizing", "drift_tolerance"],
        "less than 1",
    ),
    (
        "negative drift_min_interval_s",
        {"drift_min_interval_s": -1},
        ["body", "sizing", "drift_min_interval_s"],
        "greater than or equal to 0",
    ),
    (
        "unknown key in symbols",
        {"symbols": {"block": ["BTCUSDT"]}},
        ["body", "sizing", "symbols", "block"],
        "Extra inputs",
    ),
]


async def test_invalid_sizing_is_422_naming_the_field(
    server: LiveServer, db: asyncpg.Connection
) -> None:
    # Arrange
    api = Api(server.http)
    leader = await api.leader()
    other = await api.leader("other")
    follower = await api.follower()
    subs = f"/v1/followers/{follower['id']}/subscriptions"
    sub = await api.subscribe(follower["id"], leader["id"])
    one = f"{subs}/{sub['id']}"
    before = [dict(r) for r in await db.fetch("SELECT * FROM subscription")]

    # Act
    seen: dict[tuple[str, str], tuple[int, list[Any], bool]] = {}
    for label, sizing, _, message in INVALID_SIZING:
        for method, path, body in (
            ("POST", subs, {"leader_id": other["id"], "sizing": sizing}),
            ("PATCH", one, {"status": "paused", "sizing": sizing}),
        ):
            response = await api.http.request(method, path, headers=ADMIN, json=body)
            [error] = response.json()["detail"]
            seen[(label, method)] = (response.status_code, error["loc"], message in error["msg"])

    # Assert
    assert seen == {
        (label, method): (422, loc, True)
        for label, _, loc, _ in INVALID_SIZING
        for method in ("POST", "PATCH")
    }
    assert [dict(r) for r in await db.fetch("SELECT * FROM subscription")] == before


async def test_patched_sizing_is_used_by_the_next_fill(server: LiveServer, redis: Redis) -> None:
    # Arrange
    api = Api(server.http)
    c = await copier(api)
    await push(server, c.leader, btc("f-1", "buy", "2"))  # target: 0.2

    # Act
    await api.call(
        "PATCH",
        c.subscription_path,
        200,
        token=c.key,
        json={"sizing": {"mode": "fixed_multiplier"}, "multiplier": "0.5"},
    )
    await push(server, c.leader, btc("f-2", "buy", "1"), btc("f-3", "sell", "1.5"))
    await api.call(
        "PATCH",
        c.subscription_path,
        200,
        json={"sizing": {"mode": "fixed_notional", "notional": "1000"}},
    )
    await push(server, c.leader, btc("f-4", "buy", "0.5", "40000"))

    # Assert
    orders = await orders_by_fill(api, c.follower_id)
    modes = {f: (o[0]["sizing"]["mode"], o[0]["sizing"]["multiplier"]) for f, o in orders.items()}
    assert modes == {
        "f-1": ("target", "1"),
        "f-2": ("fixed_multiplier", "0.5"),
        "f-3": ("fixed_multiplier", "0.5"),
        "f-4": ("fixed_notional", "0.5"),
    }
    assert await streamed(redis, c.follower_id) == [
        ("f-1", "BTCUSDT", "buy", "0.2", False),
        ("f-2", "BTCUSDT", "buy", "0.5", False),  # leader qty 1 x 0.5
        ("f-3", "BTCUSDT", "sell", "0.35", True),  # the leader closed half: half of 0.7
        ("f-4", "BTCUSDT", "buy", "0.025", False),  # 1000 / 40000
    ]
    assert (await positions(api, c))["BTCUSDT"]["position"] == "0.375"


# --- controls, end to end through a push fill ------------------------------------------------


async def test_max_order_notional_clamps_the_order(server: LiveServer, redis: Redis) -> None:
    # Arrange
    api = Api(server.http)
    c = await copier(api, {"max_order_notional": "5000"})

    # Act
    await push(server, c.leader, btc("f-1", "buy", "2"), btc("f-2", "buy", "0.5"))

    # Assert
    orders = await orders_by_fill(api, c.follower_id)
    first, second = orders["f-1"][0], orders["f-2"][0]
    assert (first["qty"], first["sizing"]["raw_qty"], first["sizing"]["clamps"]) == (
        "0.1",  # 5000 / 50000
        "0.2",
        ["max_order_notional"],
    )
    assert (second["qty"], second["sizing"]["raw_qty"], second["sizing"]["clamps"]) == (
        "0.1",  # target 0.25 - 0.1 = 0.15, clamped again
        "0.15",
        ["max_order_notional"],
    )
    assert [q for _, _, _, q, _ in await streamed(redis, c.follower_id)] == ["0.1", "0.1"]
    row = (await positions(api, c))["BTCUSDT"]
    assert (row["position"], row["target"]) == ("0.2", "0.25")


async def test_max_position_notional_caps_the_symbol(server: LiveServer, redis: Redis) -> None:
    # Arrange
    api = Api(server.http)
    c = await copier(api, {"max_position_notional": "15000"})

    # Act
    await push(
        server,
        c.leader,
        btc("f-1", "buy", "2"),  # 0.2 = 10000: under the cap
        btc("f-2", "buy", "2"),  # 0.2 more, room for 5000 = 0.1
        btc("f-3", "buy", "1"),  # no room left
        btc("f-4", "sell", "2.5"),  # reductions are never capped
    )

    # Assert
    orders = await orders_by_fill(api, c.follower_id)
    assert orders["f-1"][0]["sizing"]["clamps"] == []
    assert orders["f-2"][0]["sizing"]["clamps"] == ["max_position_notional"]
    assert skipped(orders["f-3"]) == ("skipped", "max_position_notional", "0")
    assert orders["f-3"][0]["sizing"]["clamps"] == ["max_position_notional"]
    assert await streamed(redis, c.follower_id) == [
        ("f-1", "BTCUSDT", "buy", "0.2", False),
        ("f-2", "BTCUSDT", "buy", "0.1", False),
        ("f-4", "BTCUSDT", "sell", "0.05", True),  # target 0.25, held 0.3
    ]


async def test_max_leverage_counts_exposure_in_other_symbols(
    server: LiveServer, redis: Redis
) -> None:
    # Arrange: follower equity 10000 x leverage 2 = 20000 of gross exposure.
    api = Api(server.http)
    c = await copier(api, {"max_leverage": "2"})
    await api.instrument("ETHUSDT", qty_step="0.01", min_qty="0.01", min_notional="5")

    # Act
    await push(
        server,
        c.leader,
        eth("f-1", "buy", "20"),  # 2 ETH x 3000 = 6000
        btc("f-2", "buy", "6"),  # target 0.6 = 30000; room 20000 - 6000 = 14000 = 0.28
    )

    # Assert
    orders = await orders_by_fill(api, c.follower_id)
    assert orders["f-1"][0]["sizing"]["clamps"] == []
    assert orders["f-2"][0]["sizing"]["clamps"] == ["max_leverage"]
    assert await streamed(redis, c.follower_id) == [
        ("f-1", "ETHUSDT", "buy", "2", False),
        ("f-2", "BTCUSDT", "buy", "0.28", False),
    ]


async def test_symbol_lists_skip_with_their_reason(server: LiveServer, redis: Redis) -> None:
    # Arrange: two followers of one leader, one denying ETHUSDT, one allowing only BTCUSDT.
    api = Api(server.http)
    denier = await copier(api, {"symbols": {"deny": ["ETHUSDT"]}})
    allower = await copier(
        api, {"symbols": {"allow": ["BTCUSDT", "SOLUSDT"]}}, leader=denier.leader
    )

    # Act
    await push(
        server,
        denier.leader,
        btc("f-1", "buy", "2"),
        eth("f-2", "buy", "10"),
        eth("f-3", "sell", "10"),
    )

    # Assert
    for c, reason in ((denier, "symbol_denied"), (allower, "symbol_not_allowed")):
        orders = await orders_by_fill(api, c.follower_id)
        assert skipped(orders["f-2"]) == ("skipped", reason, "0")
        assert skipped(orders["f-3"]) == ("skipped", reason, "0")
        assert orders["f-2"][0]["sizing"]["skip_reason"] == reason
        assert await streamed(redis, c.follower_id) == [("f-1", "BTCUSDT", "buy", "0.2", False)]
        assert set(await positions(api, c)) == {"BTCUSDT", "ETHUSDT"}
        assert (await positions(api, c))["ETHUSDT"]["position"] == "0"


async def test_symbol_map_orders_in_the_mapped_symbol_with_its_lot_step(
    server: LiveServer, redis: Redis
) -> None:
    # Arrange: the follower's BTC-USDT-SWAP trades in 0.01 lots (BTCUSDT: 0.001).
    api = Api(server.http)
    c = await copier(api, {"symbols": {"map": {"BTCUSDT": "BTC-USDT-SWAP"}}})
    await api.instrument("BTC-USDT-SWAP", qty_step="0.01", min_qty="0.01", min_notional="5")

    # Act
    await push(server, c.leader, btc("f-1", "buy", "2.57"))
    held = await positions(api, c)
    await push(server, c.leader, btc("f-2", "sell", "2.57"))

    # Assert
    orders = await orders_by_fill(api, c.follower_id)
    sizing = orders["f-1"][0]["sizing"]
    assert (sizing["qty_step"], sizing["raw_qty"], sizing["residue"]) == ("0.01", "0.257", "0.007")
    assert await streamed(redis, c.follower_id) == [
        ("f-1", "BTC-USDT-SWAP", "buy", "0.25", False),
        ("f-2", "BTC-USDT-SWAP", "sell", "0.25", True),
    ]
    row = held["BTC-USDT-SWAP"]
    assert (row["leader_symbol"], row["position"], row["leader_position"], row["target"]) == (
        "BTCUSDT",
        "0.25",
        "2.57",
        "0.257",
    )
    assert set(held) == {"BTC-USDT-SWAP"}
    assert (await positions(api, c))["BTC-USDT-SWAP"]["position"] == "0"


async def test_max_slippage_makes_opening_orders_ioc_limits_and_closes_stay_market(
    server: LiveServer, redis: Redis
) -> None:
    # Arrange: price step 0.1; a buy limit rounds down, a sell limit rounds up (inside the band).
    api = Api(server.http)
    c = await copier(api, {"max_slippage": "0.005"})
    await api.instrument(
        "BTCUSDT", qty_step="0.001", min_qty="0.001", min_notional="5", price_step="0.1"
    )

    # Act
    await push(
        server,
        c.leader,
        btc("f-1", "buy", "2", "30011.3"),  # open long 0.2
        btc("f-2", "sell", "1", "30011.3"),  # reduce to 0.1
        btc("f-3", "sell", "3", "29999.7"),  # reverse to short 0.2
    )

    # Assert
    orders = await orders_by_fill(api, c.follower_id)
    prices = {
        fill_id: [(o["type"], o["limit_price"], o["time_in_force"], o["reduce_only"]) for o in os]
        for fill_id, os in orders.items()
    }
    assert prices == {
        "f-1": [("limit", "30161.3", "IOC", False)],  # 30011.3 x 1.005 = 30161.3565
        "f-2": [("market", None, None, True)],
        "f-3": [
            ("market", None, None, True),
            ("limit", "29849.8", "IOC", False),  # 29999.7 x 0.995 = 29849.7015
        ],
    }
    stream = await read_stream(redis, c.follower_id)
    assert [
        (o["leader_fill_id"], o["side"], o["qty"], o["type"], o["limit_price"], o["time_in_force"])
        for o in stream
    ] == [
        ("f-1", "buy", "0.2", "limit", "30161.3", "IOC"),
        ("f-2", "sell", "0.1", "market", None, None),
        ("f-3", "sell", "0.1", "market", None, None),
        ("f-3", "sell", "0.2", "limit", "29849.8", "IOC"),
    ]


async def test_stale_equity_is_skipped_until_a_fresh_snapshot(
    server: LiveServer, redis: Redis, db: asyncpg.Connection
) -> None:
    # Arrange: the follower's only snapshot is an hour old, inserted with plain SQL.
    api = Api(server.http)
    c = await copier(api, {"max_equity_age_s": 60}, follower_equity=None)
    follower_id = UUID(c.follower_id)
    old_id = await db.fetchval(
        "INSERT INTO equity_snapshot (follower_id, equity, as_of)"
        " VALUES ($1, $2, now() - interval '1 hour') RETURNING id",
        follower_id,
        Decimal("10000"),
    )

    def cache_has_old_snapshot() -> bool:
        reading = server.runtime.equity.follower(follower_id)
        return reading is not None and reading.snapshot_id == old_id

    await eventually(cache_has_old_snapshot, "the equity cache takes the SQL snapshot")

    # Act
    await push(server, c.leader, btc("f-1", "buy", "2"))
    fresh = await api.follower_equity(c.follower_id, "10000")
    await push(server, c.leader, btc("f-2", "buy", "1"))

    # Assert
    orders = await orders_by_fill(api, c.follower_id)
    assert skipped(orders["f-1"]) == ("skipped", "stale_equity", "0")
    stale = orders["f-1"][0]["sizing"]
    assert (stale["follower_equity_snapshot_id"], stale["follower_equity"]) == (old_id, "10000")
    assert orders["f-2"][0]["sizing"]["follower_equity_snapshot_id"] == fresh["id"]
    # Target mode: the fill missed while the equity was stale is caught up (target 0.3).
    assert await streamed(redis, c.follower_id) == [("f-2", "BTCUSDT", "buy", "0.3", False)]


async def test_equity_floor_turns_the_subscription_close_only(
    server: LiveServer, redis: Redis
) -> None:
    # Arrange
    api = Api(server.http)
    c = await copier(api, {"equity_floor": "5000"})
    await push(server, c.leader, btc("f-1", "buy", "2"))  # 0.2 at equity 10000
    await api.follower_equity(c.follower_id, "4000")

    # Act
    await push(server, c.leader, btc("f-2", "buy", "2"))  # opening: refused, turns close_only
    [sub] = await api.call("GET", f"/v1/followers/{c.follower_id}/subscriptions", 200, token=c.key)
    await push(
        server,
        c.leader,
        btc("f-3", "sell", "1"),  # leader 4 -> 3: target 3 x 0.04 = 0.12, sell 0.08
        btc("f-4", "buy", "1"),  # opening again: refused
    )

    # Assert
    assert (sub["status"], sub["status_reason"]) == ("close_only", "equity_floor")
    orders = await orders_by_fill(api, c.follower_id)
    assert skipped(orders["f-2"]) == ("skipped", "close_only", "0")
    assert skipped(orders["f-4"]) == ("skipped", "close_only", "0")
    assert await streamed(redis, c.follower_id) == [
        ("f-1", "BTCUSDT", "buy", "0.2", False),
        ("f-3", "BTCUSDT", "sell", "0.08", True),
    ]
    [still] = await api.call("GET", f"/v1/followers/{c.follower_id}/subscriptions", 200)
    assert (still["status"], still["status_reason"]) == ("close_only", "equity_floor")


async def test_paused_subscription_produces_no_order(server: LiveServer, redis: Redis) -> None:
    # Arrange
    api = Api(server.http)
    c = await copier(api)
    await api.call("PATCH", c.subscription_path, 200, token=c.key, json={"status": "paused"})

    # Act
    await push(server, c.leader, btc("f-1", "buy", "2"))
    while_paused = await api.settled_orders(c.follower_id)
    stream_while_paused = await read_stream(redis, c.follower_id)
    await api.call("PATCH", c.subscription_path, 200, token=c.key, json={"status": "active"})
    await push(server, c.leader, btc("f-2", "buy", "1"))

    # Assert
    assert while_paused == []
    assert stream_while_paused == []
    # Resumed in target mode, the follower goes to its target: 3 x 0.1.
    assert await streamed(redis, c.follower_id) == [("f-2", "BTCUSDT", "buy", "0.3", False)]


async def test_close_only_by_patch_sends_only_reducing_orders(
    server: LiveServer, redis: Redis
) -> None:
    # Arrange
    api = Api(server.http)
    c = await copier(api)
    await push(server, c.leader, btc("f-1", "buy", "2"))  # 0.2

    # Act
    patched = await api.call(
        "PATCH", c.subscription_path, 200, token=c.key, json={"status": "close_only"}
    )
    await push(
        server,
        c.leader,
        btc("f-2", "buy", "1"),  # leader 3: opening, refused
        btc("f-3", "sell", "1.5"),  # leader 1.5: target 0.15, sell 0.05
        btc("f-4", "sell", "3"),  # leader -1.5: close 0.15; the short is refused
    )

    # Assert
    assert (patched["status"], patched["status_reason"]) == ("close_only", None)
    orders = await orders_by_fill(api, c.follower_id)
    assert skipped(orders["f-2"]) == ("skipped", "close_only", "0")
    # The short is recorded too: a skipped order of its own, with its reason.
    assert legs(orders["f-4"]) == [("sell", "0.15", "market", True), ("sell", "0", "market", False)]
    assert [(o["status"], o["skip_reason"]) for o in orders["f-4"]] == [
        ("dispatched", None),
        ("skipped", "close_only"),
    ]
    assert orders["f-4"][0]["sizing"]["skip_reason"] == "close_only"
    assert await streamed(redis, c.follower_id) == [
        ("f-1", "BTCUSDT", "buy", "0.2", False),
        ("f-3", "BTCUSDT", "sell", "0.05", True),
        ("f-4", "BTCUSDT", "sell", "0.15", True),
    ]
    assert (await positions(api, c))["BTCUSDT"]["position"] == "0"


async def test_max_leverage_counts_exposure_in_mapped_symbols(
    server: LiveServer, redis: Redis
) -> None:
    # Arrange: as above, with the follower's ETH held as ETH-USDT-SWAP.
    api = Api(server.http)
    c = await copier(api, {"max_leverage": "2", "symbols": {"map": {"ETHUSDT": "ETH-USDT-SWAP"}}})
    await api.instrument("ETH-USDT-SWAP", qty_step="0.01", min_qty="0.01", min_notional="5")

    # Act
    await push(server, c.leader, eth("f-1", "buy", "20"), btc("f-2", "buy", "6"))

    # Assert
    assert await streamed(redis, c.follower_id) == [
        ("f-1", "ETH-USDT-SWAP", "buy", "2", False),
        ("f-2", "BTCUSDT", "buy", "0.28", False),  # not 0.4: 6000 + 20000 would be 2.6x
    ]


# --- explanation and positions ---------------------------------------------------------------


async def test_order_detail_explains_the_quantity(server: LiveServer) -> None:
    # Arrange: ratio 0.10003, orders capped at 7500 = 0.15 BTC.
    api = Api(server.http)
    c = await copier(api, {"max_order_notional": "7500"}, follower_equity="10003")
    assert c.follower_equity is not None
    await push(server, c.leader, btc("f-1", "buy", "2"), btc("f-2", "buy", "1"))
    orders = await orders_by_fill(api, c.follower_id)
    base = f"/v1/followers/{c.follower_id}/orders"

    # Act
    first = await api.call("GET", f"{base}/{orders['f-1'][0]['order_id']}", 200, token=c.key)
    second = await api.call("GET", f"{base}/{orders['f-2'][0]['order_id']}", 200, token=c.key)

    # Assert
    common = {
        "mode": "target",
        "leader_price": "50000",
        "leader_equity": "100000",
        "leader_equity_snapshot_id": c.leader_equity["id"],
        "follower_equity": "10003",
        "follower_equity_snapshot_id": c.follower_equity["id"],
        "ratio": "0.10003",
        "multiplier": "1",
        "qty_step": "0.001",
        "skip_reason": None,
    }
    assert first["sizing"] == {
        **common,
        "effect": "open",
        "leader_position_before": "0",
        "leader_position_after": "2",
        "follower_position_before": "0",
        "follower_position_after": "0.15",
        "target": "0.20006",
        "raw_qty": "0.20006",
        "residue": "0.00006",
        "clamps": ["max_order_notional"],
    }
    assert second["sizing"] == {
        **common,
        "effect": "add",
        "leader_position_before": "2",
        "leader_position_after": "3",
        "follower_position_before": "0.15",
        "follower_position_after": "0.3",
        "target": "0.30009",
        "raw_qty": "0.15009",
        "residue": "0.00009",
        "clamps": [],
    }
    assert (first["qty"], second["qty"]) == ("0.15", "0.15")
    fill = {k: second["fill"][k] for k in ("fill_id", "symbol", "side", "qty", "price")}
    assert fill == {
        "fill_id": "f-2",
        "symbol": "BTCUSDT",
        "side": "buy",
        "qty": "1",
        "price": "50000",
    }
    assert (second["status"], second["events"]) == ("dispatched", [])


async def test_order_detail_lists_report_events(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    c = await copier(api)
    await push(server, c.leader, btc("f-1", "buy", "2"))
    [order] = (await orders_by_fill(api, c.follower_id))["f-1"]
    path = f"/v1/followers/{c.follower_id}/orders/{order['order_id']}"
    await api.call("POST", f"{path}/reports", 200, token=c.key, json={"status": "accepted"})
    report = {"status": "filled", "filled_qty": "0.2", "avg_price": "50010"}
    await api.call("POST", f"{path}/reports", 200, token=c.key, json=report)

    # Act
    detail = await api.call("GET", path, 200, token=c.key)

    # Assert
    events = [(e["status"], e["filled_qty"], e["avg_price"]) for e in detail["events"]]
    assert events == [("accepted", "0", None), ("filled", "0.2", "50010")]
    assert detail["sizing"] == order["sizing"]
    assert (detail["status"], detail["filled_qty"]) == ("filled", "0.2")


async def test_leader_positions_are_admin_only(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    c = await copier(api)
    await push(
        server,
        c.leader,
        btc("f-1", "buy", "2"),
        eth("f-2", "sell", "3"),
        btc("f-3", "sell", "0.5"),
    )
    path = f"/v1/leaders/{c.leader['id']}/positions"

    # Act
    as_admin = await api.call("GET", path, 200)
    as_follower = await api.call("GET", path, 403, token=c.key)
    unknown = await api.call(
        "GET", "/v1/leaders/00000000-0000-4000-8000-000000000000/positions", 404
    )

    # Assert
    assert as_admin == [{"symbol": "BTCUSDT", "qty": "1.5"}, {"symbol": "ETHUSDT", "qty": "-3"}]
    assert as_follower == {"detail": "admin token required"}
    assert unknown == {"detail": "leader not found"}


# --- executor reports correct the tracked position -------------------------------------------


async def test_rejected_order_gives_back_what_did_not_fill_and_target_mode_resends_it(
    server: LiveServer, redis: Redis
) -> None:
    # Arrange
    api = Api(server.http)
    c = await copier(api)
    await push(server, c.leader, btc("f-1", "buy", "2"))  # 0.2
    [order] = (await orders_by_fill(api, c.follower_id))["f-1"]
    reports = f"/v1/followers/{c.follower_id}/orders/{order['order_id']}/reports"
    partial = {"status": "partially_filled", "filled_qty": "0.05", "avg_price": "50000"}
    await api.call("POST", reports, 200, token=c.key, json=partial)
    while_open = (await positions(api, c))["BTCUSDT"]

    # Act
    rejected = {
        "status": "rejected",
        "filled_qty": "0.05",
        "avg_price": "50000",
        "reason": "margin",
    }
    await api.call("POST", reports, 200, token=c.key, json=rejected)
    after_reject = (await positions(api, c))["BTCUSDT"]
    await push(server, c.leader, btc("f-2", "buy", "1"))
    after_next_fill = (await positions(api, c))["BTCUSDT"]

    # Assert
    assert (while_open["position"], while_open["actual"]) == ("0.2", "0.05")
    assert (after_reject["position"], after_reject["actual"]) == ("0.05", "0.05")
    assert await streamed(redis, c.follower_id) == [
        ("f-1", "BTCUSDT", "buy", "0.2", False),
        ("f-2", "BTCUSDT", "buy", "0.25", False),  # target 0.3 - 0.05
    ]
    assert (after_next_fill["position"], after_next_fill["target"]) == ("0.3", "0.3")


async def test_rejected_close_leaves_the_position_to_close_with_the_next_fill(
    server: LiveServer, redis: Redis
) -> None:
    # Arrange
    api = Api(server.http)
    c = await copier(api)
    await push(server, c.leader, btc("f-1", "buy", "2"), btc("f-2", "sell", "1"))  # 0.2, 0.1
    [close] = (await orders_by_fill(api, c.follower_id))["f-2"]
    reports = f"/v1/followers/{c.follower_id}/orders/{close['order_id']}/reports"

    # Act
    await api.call("POST", reports, 200, token=c.key, json={"status": "rejected"})
    after_reject = (await positions(api, c))["BTCUSDT"]
    await push(server, c.leader, btc("f-3", "sell", "1"))  # the leader goes flat

    # Assert
    assert after_reject["position"] == "0.2"
    assert await streamed(redis, c.follower_id) == [
        ("f-1", "BTCUSDT", "buy", "0.2", False),
        ("f-2", "BTCUSDT", "sell", "0.1", True),
        ("f-3", "BTCUSDT", "sell", "0.2", True),  # the whole tracked position
    ]
    assert (await positions(api, c))["BTCUSDT"]["position"] == "0"
