"""Absurd leader fills are quarantined with a reason, counted, answered, and never sized."""

from __future__ import annotations

import json

import asyncpg
from prometheus_client import REGISTRY

from tests.support import Api, LiveServer, fill_frame, push_socket, read_stream, send_frame


def _quarantined_count(reason: str) -> float:
    value = REGISTRY.get_sample_value("copytrade_fills_quarantined_total", {"reason": reason})
    return value or 0.0


async def test_fill_over_a_thousand_times_leader_equity_is_quarantined_not_sized(
    server: LiveServer, db: asyncpg.Connection, redis: object
) -> None:
    # Arrange: leader equity 1,000; a fill of 1,000,001 notional
    api = Api(server.http)
    leader = await api.leader()
    await api.leader_equity(leader["id"], "1000")
    follower = await api.follower()
    await api.follower_equity(follower["id"], "1000")
    await api.subscribe(follower["id"], leader["id"])
    absurd = fill_frame("f-absurd", "BTCUSDT", "buy", "1000.001", "1000")
    before = _quarantined_count("notional_over_equity")

    # Act
    async with push_socket(server.ws_url, leader["id"], leader["push_token"]) as ws:
        reply = await send_frame(ws, absurd)
        ack = await send_frame(ws, fill_frame("f-ok", "BTCUSDT", "buy", "1", "1000"))

    # Assert: answered, stored with the frame, counted; no fill row and no order from it
    assert reply == {
        "type": "error",
        "error": "quarantined: notional_over_equity",
        "fill_id": "f-absurd",
    }
    assert ack["status"] == "accepted"
    rows = await db.fetch("SELECT leader_id, raw, reason, received_at FROM quarantined_fill")
    assert [(str(r["leader_id"]), r["raw"], r["reason"]) for r in rows] == [
        (leader["id"], absurd, "notional_over_equity")
    ]
    assert rows[0]["received_at"] is not None
    assert _quarantined_count("notional_over_equity") == before + 1
    fills = await db.fetch("SELECT fill_id FROM leader_fill ORDER BY id")
    assert [f["fill_id"] for f in fills] == ["f-ok"]
    orders = await api.settled_orders(follower["id"])
    assert [o["leader_fill_id"] for o in orders] == ["f-ok"]
    assert [o["leader_fill_id"] for o in await read_stream(redis, follower["id"])] == ["f-ok"]


async def test_quarantined_frame_is_stored_truncated(
    server: LiveServer, db: asyncpg.Connection
) -> None:
    # Arrange: a frame padded past 4 KiB with an extra field the parser ignores
    api = Api(server.http)
    leader = await api.leader()
    await api.leader_equity(leader["id"], "1")
    frame = json.loads(fill_frame("f-big", "BTCUSDT", "buy", "10", "1000"))
    frame["note"] = "x" * 10_000
    raw = json.dumps(frame)

    # Act
    async with push_socket(server.ws_url, leader["id"], leader["push_token"]) as ws:
        reply = await send_frame(ws, raw)

    # Assert
    assert reply["error"] == "quarantined: notional_over_equity"
    stored = await db.fetchval("SELECT raw FROM quarantined_fill")
    assert stored == raw[:4096]
    assert await db.fetchval("SELECT count(*) FROM leader_fill") == 0


async def test_impossible_values_are_rejected_and_quarantined_with_their_reason(
    server: LiveServer, db: asyncpg.Connection
) -> None:
    # Arrange: well-formed frames whose values cannot be true
    api = Api(server.http)
    leader = await api.leader()
    frames = {
        "non_positive_value": fill_frame("f-1", "BTCUSDT", "buy", "1", "-5"),
        "future_timestamp": fill_frame("f-2", "BTCUSDT", "buy", "1", "5", ts=4_000_000_000_000),
        "out_of_bounds": fill_frame("f-3", "BTCUSDT", "buy", "1e40", "5"),
    }

    # Act
    async with push_socket(server.ws_url, leader["id"], leader["push_token"]) as ws:
        replies = {reason: await send_frame(ws, frame) for reason, frame in frames.items()}

    # Assert: the same error replies as before, and each frame kept with its reason
    assert {r: reply["type"] for r, reply in replies.items()} == dict.fromkeys(frames, "error")
    assert replies["non_positive_value"]["error"] == "price: must be a positive finite decimal"
    rows = await db.fetch("SELECT raw, reason FROM quarantined_fill ORDER BY id")
    assert [(r["reason"], r["raw"]) for r in rows] == list(frames.items())
    assert await db.fetchval("SELECT count(*) FROM leader_fill") == 0
