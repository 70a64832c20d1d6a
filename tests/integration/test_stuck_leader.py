"""One leader's fill stuck on a row lock holds back no other leader, and fails cleanly."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.conftest import make_settings
from tests.support import (
    Api,
    LiveServer,
    eventually,
    fill_frame,
    push_socket,
    send_frame,
    start_live_server,
)


@pytest.fixture
async def locking_server(clean: None) -> AsyncIterator[LiveServer]:
    async with start_live_server(make_settings(db_lock_timeout_ms=3000)) as live:
        yield live


async def pair(api: Api, name: str) -> tuple[Any, Any, Any]:
    leader = await api.leader(name)
    follower = await api.follower(name)
    await api.leader_equity(leader["id"], "100000")
    await api.follower_equity(follower["id"], "10000")
    sub = await api.subscribe(follower["id"], leader["id"])
    return leader, follower, sub


async def waiting_on_locks(db: Any) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE application_name = 'copytrade-hot' AND wait_event_type = 'Lock'"
    )
    return count


async def until_waiting_on_a_lock(db: Any) -> None:
    await eventually(lambda: waiting_on_locks(db), "a fill waiting on the lock", within_s=30)


async def error_then_close(ws: ClientConnection) -> tuple[dict[str, Any], int | None]:
    frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=30))
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), timeout=30)
    return frame, closed.value.rcvd.code if closed.value.rcvd else None


async def test_a_locked_leader_fails_cleanly_while_others_are_acknowledged(
    locking_server: LiveServer, db: Any
) -> None:
    # Arrange: two leaders; the first one's follower already holds a position row.
    server = locking_server
    api = Api(server.http)
    await api.instrument("BTCUSDT", qty_step="0.001", min_qty="0.001", min_notional="5")
    stuck, stuck_follower, stuck_sub = await pair(api, "stuck")
    other, _, _ = await pair(api, "other")
    async with push_socket(server.ws_url, stuck["id"], stuck["push_token"]) as ws:
        first = await send_frame(ws, fill_frame("s-0", "BTCUSDT", "buy", "2", "50000"))
    assert first["status"] == "accepted"

    # Another connection holds the stuck leader's follower positions locked meanwhile (the
    # vector row of the symbol, which holds its follower's position).
    async with db.transaction():
        locked = await db.fetch(
            "SELECT * FROM subscription_position_vector"
            " WHERE leader_id = $1 AND $2 = ANY(subscription_ids) FOR UPDATE",
            stuck["id"],
            stuck_sub["id"],
        )
        assert len(locked) == 1
        async with (
            push_socket(server.ws_url, stuck["id"], stuck["push_token"]) as one,
            push_socket(server.ws_url, stuck["id"], stuck["push_token"]) as two,
        ):
            # Two fills of the stuck leader in flight: one waits on the lock, one behind it.
            await one.send(fill_frame("s-1", "BTCUSDT", "buy", "1", "50000"))
            await two.send(fill_frame("s-2", "BTCUSDT", "buy", "1", "50000"))
            await until_waiting_on_a_lock(db)

            # Act: the other leader's fills, while the lock is still held.
            async with push_socket(server.ws_url, other["id"], other["push_token"]) as ws:
                acks = [
                    await send_frame(ws, fill_frame(f"o-{n}", "BTCUSDT", "buy", "1", "50000"))
                    for n in range(10)
                ]
            stuck_replies = await asyncio.gather(error_then_close(one), error_then_close(two))

    # The lock is gone: the stuck leader resends what was not acknowledged.
    async with push_socket(server.ws_url, stuck["id"], stuck["push_token"]) as ws:
        resent = [
            await send_frame(ws, fill_frame(f"s-{n}", "BTCUSDT", "buy", "1", "50000"))
            for n in (1, 2)
        ]

    # Assert: the other leader was acknowledged throughout; the stuck fills were refused
    # with a reason, recorded nothing, and went through once resent.
    assert [a["status"] for a in acks] == ["accepted"] * 10
    for (frame, code), fill_id in zip(stuck_replies, ("s-1", "s-2"), strict=True):
        assert frame == {
            "type": "error",
            "fill_id": fill_id,
            "error": "not recorded: database timeout; resend",
            "retry": True,
        }
        assert code == 1011
    assert [r["status"] for r in resent] == ["accepted", "accepted"]
    orders = await api.settled_orders(stuck_follower["id"])
    assert sorted(o["leader_fill_id"] for o in orders) == ["s-0", "s-1", "s-2"]
