"""A Bybit leader against the live service: fills from the fake venue's private stream (and
its REST backfill) become exact follower orders, across a dropped and a silent connection."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from tests.support import Api, LiveServer, eventually, read_stream, start_live_server
from tests.venues.fake_bybit import FakeBybit, execution
from tests.venues.harness import Running, run_venue, venue_settings

WAIT_S = 30.0


@dataclass
class Desk:
    api: Api
    server: LiveServer
    venue: FakeBybit
    running: Running
    redis: Redis
    db: asyncpg.Connection
    leader: dict[str, Any]
    followers: list[str]  # equity 10000 (ratio 0.1), 5000 (ratio 0.05)


def ms_now() -> int:
    return int(time.time() * 1000)


@pytest.fixture
async def desk(redis: Redis, db: asyncpg.Connection) -> AsyncIterator[Desk]:
    venue = FakeBybit()
    settings = venue_settings()
    async with run_venue(venue) as running, start_live_server(settings) as server:
        api = Api(server.http)
        followers = []
        for name, equity in (("f-ten", "10000"), ("f-five", "5000")):
            follower = await api.follower(name)
            await api.follower_equity(follower["id"], equity)
            followers.append(follower["id"])
        await api.instrument("BTCUSDT", qty_step="0.001", min_qty="0.001")
        await api.instrument("ETHUSDT", qty_step="0.01", min_qty="0.01")
        leader = await api.leader(
            "bybit-leader",
            feed={
                "kind": "bybit",
                "api_key": venue.api_key,
                "api_secret": venue.api_secret,
                "categories": ["linear"],
                "rest_url": running.rest_url,
                "ws_url": f"{running.ws_base}{venue.ws_path}",
            },
        )
        for follower_id in followers:
            await api.subscribe(follower_id, leader["id"])
        await venue.wait_subscribed(WAIT_S)
        yield Desk(api, server, venue, running, redis, db, leader, followers)


async def orders_of(desk: Desk, follower_id: str) -> list[tuple[str, str, str, str, bool]]:
    """(leader_fill_id, symbol, side, qty, reduce_only) of each order in the follower's stream."""
    return [
        (o["leader_fill_id"], o["symbol"], o["side"], o["qty"], o["reduce_only"])
        for o in await read_stream(desk.redis, follower_id)
    ]


async def wait_orders(desk: Desk, count: int) -> list[list[tuple[str, str, str, str, bool]]]:
    async def check() -> list[list[tuple[str, str, str, str, bool]]] | None:
        streams = [await orders_of(desk, f) for f in desk.followers]
        return streams if all(len(s) >= count for s in streams) else None

    return await eventually(check, f"{count} orders per follower", WAIT_S)  # type: ignore[no-any-return]


async def listener(desk: Desk) -> dict[str, Any]:
    body = await desk.api.call("GET", f"/v1/leaders/{desk.leader['id']}", 200)
    state: dict[str, Any] = body["listener"]
    return state


def assert_once_each(streams: list[list[tuple[str, str, str, str, bool]]]) -> None:
    for stream in streams:
        counts = Counter((fill_id, symbol) for fill_id, symbol, *_ in stream)
        assert all(n == 1 for n in counts.values()), counts


async def test_created_leader_shows_no_secret(desk: Desk) -> None:
    # Arrange: the fixture created the leader with both secrets.
    leader_id = desk.leader["id"]

    # Act
    shown = await desk.api.call("GET", f"/v1/leaders/{leader_id}", 200)
    listed = await desk.api.call("GET", "/v1/leaders", 200)

    # Assert
    for body in (desk.leader, shown, listed):
        text = json.dumps(body)
        assert desk.venue.api_secret not in text
        assert desk.venue.api_key not in text
    assert shown["feed"]["kind"] == "bybit"
    assert shown["feed"]["config"]["categories"] == ["linear"]
    assert shown["listener"]["state"] == "connected"
    assert desk.venue.subscribed_topics == ["execution.linear"]
    assert desk.venue.auth_failures == 0


async def test_normal_run_of_fills(desk: Desk) -> None:
    # Arrange
    now = ms_now()
    order_1 = "0f9a4c7e-1111-4d2a-9a57-3c7d8f2e0001"

    # Act: one message with two partial fills of one order and an ETH fill; then funding (not
    # a trade), then a takeover liquidation that halves the BTC position.
    await desk.venue.trade(
        execution(
            "BTCUSDT",
            "Buy",
            "0.4",
            "50000",
            exec_id="p-1",
            order_id=order_1,
            leaves_qty="0.6",
            exec_time_ms=now,
        ),
        execution(
            "BTCUSDT", "Buy", "0.6", "50010", exec_id="p-2", order_id=order_1, exec_time_ms=now + 1
        ),
        # Distinct times: a backfill orders fills of one millisecond by id, not by message.
        execution("ETHUSDT", "Buy", "2", "3000", exec_id="e-1", exec_time_ms=now + 2),
    )
    await desk.venue.trade(
        execution(
            "BTCUSDT",
            "Sell",
            "1",
            "50000",
            exec_id="fund-1",
            exec_type="Funding",
            exec_time_ms=now + 2,
        ),
    )
    await desk.venue.trade(
        execution(
            "BTCUSDT",
            "Sell",
            "0.5",
            "48000",
            exec_id="liq-1",
            exec_type="BustTrade",
            closed_size="0.5",
            create_type="CreateByTakeOver_PassThrough",
            exec_time_ms=now + 3,
        ),
    )
    streams = await wait_orders(desk, 4)

    # Assert: exact orders (leader equity 100000 from REST; ratios 0.1 and 0.05).
    assert streams[0] == [
        ("p-1", "BTCUSDT", "buy", "0.04", False),
        ("p-2", "BTCUSDT", "buy", "0.06", False),
        ("e-1", "ETHUSDT", "buy", "0.2", False),
        ("liq-1", "BTCUSDT", "sell", "0.05", True),
    ]
    assert streams[1] == [
        ("p-1", "BTCUSDT", "buy", "0.02", False),
        ("p-2", "BTCUSDT", "buy", "0.03", False),
        ("e-1", "ETHUSDT", "buy", "0.1", False),
        ("liq-1", "BTCUSDT", "sell", "0.025", True),
    ]
    fills = await desk.db.fetch(
        "SELECT fill_id, liquidation, reduce_only, fee_asset FROM leader_fill"
        " WHERE leader_id = $1 ORDER BY fill_id",
        desk.leader["id"],
    )
    assert [tuple(r) for r in fills] == [
        ("e-1", False, False, "USDT"),
        ("liq-1", True, True, "USDT"),
        ("p-1", False, False, "USDT"),
        ("p-2", False, False, "USDT"),
    ]

    # Act: the leader's equity changes at the venue.
    desk.venue.total_equity = "120000"

    # Assert: REST equity readings are stored as snapshots.
    async def equities() -> set[Decimal] | None:
        rows = await desk.db.fetch(
            "SELECT equity FROM equity_snapshot WHERE leader_id = $1", desk.leader["id"]
        )
        values = {r["equity"] for r in rows}
        return values if {Decimal("100000"), Decimal("120000")} <= values else None

    await eventually(equities, "both equity snapshots", WAIT_S)
    assert (await listener(desk))["equity_at"] is not None
    assert desk.venue.pings > 0  # the app-level ping, answered by pongs that are not fills


async def test_dropped_connection_is_backfilled_without_duplicates(desk: Desk) -> None:
    # Arrange: a live fill, applied.
    now = ms_now()
    await desk.venue.trade(
        execution("BTCUSDT", "Buy", "1", "50000", exec_id="live-1", exec_time_ms=now)
    )
    await wait_orders(desk, 1)
    before = (await listener(desk))["reconnects"]

    # Act: fills the stream never delivers (history only), then the venue drops the socket.
    desk.venue.history.extend(
        [
            execution("BTCUSDT", "Buy", "1", "50100", exec_id="gap-1", exec_time_ms=now + 10),
            execution(
                "BTCUSDT",
                "Sell",
                "0.5",
                "50200",
                exec_id="gap-2",
                closed_size="0.5",
                exec_time_ms=now + 11,
            ),
        ]
    )
    await desk.venue.drop()
    await desk.venue.wait_subscribed(WAIT_S)
    streams = await wait_orders(desk, 3)

    # Act: a fill delivered live and then again by the backfill of the next reconnect.
    both_at = ms_now()
    await desk.venue.trade(
        execution("ETHUSDT", "Sell", "1", "3000", exec_id="both-1", exec_time_ms=both_at)
    )
    await wait_orders(desk, 4)
    calls_before_cut = len(desk.venue.rest_calls)
    desk.venue.subscribed.clear()
    await desk.running.proxy.cut()
    await desk.venue.wait_subscribed(WAIT_S)

    async def backfilled_again() -> bool:
        state = await listener(desk)
        return bool(state["reconnects"] >= before + 2 and state["state"] == "connected")

    await eventually(backfilled_again, "the second reconnect", WAIT_S)
    await desk.venue.trade(
        execution("ETHUSDT", "Buy", "1", "3000", exec_id="after-1", exec_time_ms=ms_now())
    )
    streams = await wait_orders(desk, 5)

    # Assert: every fill once per follower, in exchange order, with exact quantities.
    assert streams[0] == [
        ("live-1", "BTCUSDT", "buy", "0.1", False),
        ("gap-1", "BTCUSDT", "buy", "0.1", False),
        ("gap-2", "BTCUSDT", "sell", "0.05", True),
        ("both-1", "ETHUSDT", "sell", "0.1", False),
        ("after-1", "ETHUSDT", "buy", "0.1", True),
    ]
    assert streams[1] == [
        ("live-1", "BTCUSDT", "buy", "0.05", False),
        ("gap-1", "BTCUSDT", "buy", "0.05", False),
        ("gap-2", "BTCUSDT", "sell", "0.025", True),
        ("both-1", "ETHUSDT", "sell", "0.05", False),
        ("after-1", "ETHUSDT", "buy", "0.05", True),
    ]
    assert_once_each(streams)
    # both-1 was served again by the backfill after the cut, and dropped by its id.
    assert any(
        c.path == "/v5/execution/list"
        and int(c.query["startTime"]) <= both_at <= int(c.query["endTime"])
        for c in desk.venue.rest_calls[calls_before_cut:]
    )
    state = await listener(desk)
    assert state["reconnects"] >= before + 2
    assert state["backfilled"] >= 2  # gap-1 and gap-2 came over REST
    assert desk.venue.rest_failures == []
    assert desk.venue.auth_failures == 0
    fill_ids = await desk.db.fetch(
        "SELECT fill_id FROM leader_fill WHERE leader_id = $1", desk.leader["id"]
    )
    assert sorted(r["fill_id"] for r in fill_ids) == [
        "after-1",
        "both-1",
        "gap-1",
        "gap-2",
        "live-1",
    ]


async def test_silent_socket_reconnects_on_idle_timeout(desk: Desk) -> None:
    # Arrange
    now = ms_now()
    await desk.venue.trade(
        execution("BTCUSDT", "Sell", "2", "50000", exec_id="s-1", exec_time_ms=now)
    )
    await wait_orders(desk, 1)
    before = (await listener(desk))["reconnects"]

    # Act: the socket stays open but nothing passes (no pongs either); fills happen meanwhile.
    desk.running.proxy.freeze()
    desk.venue.history.append(
        execution(
            "BTCUSDT", "Buy", "1", "49000", exec_id="s-2", closed_size="1", exec_time_ms=now + 5
        )
    )

    async def reconnected() -> dict[str, Any] | None:
        state = await listener(desk)
        return state if state["reconnects"] > before else None

    silent = await eventually(reconnected, "the idle timeout to reconnect", WAIT_S)
    desk.running.proxy.thaw()
    streams = await wait_orders(desk, 2)

    # Assert
    assert streams[0] == [
        ("s-1", "BTCUSDT", "sell", "0.2", False),
        ("s-2", "BTCUSDT", "buy", "0.1", True),
    ]
    assert streams[1] == [
        ("s-1", "BTCUSDT", "sell", "0.1", False),
        ("s-2", "BTCUSDT", "buy", "0.05", True),
    ]
    assert_once_each(streams)
    assert "IdleTimeout" in silent["last_error"]
    assert (await listener(desk))["backfilled"] >= 1
