"""copy_open_positions: a new follower is brought to the leader's open positions at once."""

from __future__ import annotations

from typing import Any

from tests.support import Api, LiveServer, fill_frame, push_socket, read_stream, send_frame


async def push(server: LiveServer, leader: dict[str, Any], *frames: str) -> None:
    async with push_socket(server.ws_url, leader["id"], leader["push_token"]) as ws:
        for frame in frames:
            assert (await send_frame(ws, frame))["status"] == "accepted"


def summary(orders: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    return [(o["symbol"], o["side"], o["qty"], o["leader_fill_id"].split(":")[0]) for o in orders]


async def test_new_subscription_copies_the_leaders_open_positions_once(
    server: LiveServer, redis: Any
) -> None:
    # Arrange: the leader (equity 100000) is long 2 BTC and short 10 ETH; an early follower
    # has copied that already.
    api = Api(server.http)
    leader = await api.leader()
    await api.leader_equity(leader["id"], "100000")
    await api.instrument("BTCUSDT", qty_step="0.001")
    await api.instrument("ETHUSDT", qty_step="0.01")
    early = await api.follower("early")
    await api.follower_equity(early["id"], "10000")
    await api.subscribe(early["id"], leader["id"])
    await push(
        server,
        leader,
        fill_frame("f-1", "BTCUSDT", "buy", "2", "50000"),
        fill_frame("f-2", "ETHUSDT", "sell", "10", "3000"),
    )
    late = await api.follower("late")
    await api.follower_equity(late["id"], "25000")
    lazy = await api.follower("lazy")
    await api.follower_equity(lazy["id"], "25000")

    # Act
    await api.call(
        "POST",
        f"/v1/followers/{late['id']}/subscriptions",
        201,
        json={"leader_id": leader["id"], "copy_open_positions": True},
    )
    await api.subscribe(lazy["id"], leader["id"])
    synced = await api.settled_orders(late["id"])
    await push(server, leader, fill_frame("f-3", "BTCUSDT", "buy", "2", "50000"))

    # Assert: the late follower holds 0.25 of the leader at once; the lazy one only catches
    # up at the next BTC fill; the leader's positions did not move; nobody got anything twice.
    assert sorted(summary(synced)) == [
        ("BTCUSDT", "buy", "0.5", "sync"),
        ("ETHUSDT", "sell", "2.5", "sync"),
    ]
    assert summary(await read_stream(redis, late["id"])) == [
        ("BTCUSDT", "buy", "0.5", "sync"),
        ("ETHUSDT", "sell", "2.5", "sync"),
        ("BTCUSDT", "buy", "0.5", "f-3"),
    ]
    assert summary(await read_stream(redis, lazy["id"])) == [("BTCUSDT", "buy", "1", "f-3")]
    assert summary(await read_stream(redis, early["id"])) == [
        ("BTCUSDT", "buy", "0.2", "f-1"),
        ("ETHUSDT", "sell", "1", "f-2"),
        ("BTCUSDT", "buy", "0.2", "f-3"),
    ]
    leader_positions = await api.call("GET", f"/v1/leaders/{leader['id']}/positions", 200)
    assert leader_positions == [
        {"symbol": "BTCUSDT", "qty": "4"},
        {"symbol": "ETHUSDT", "qty": "-10"},
    ]
    [sync_btc] = [o for o in synced if o["symbol"] == "BTCUSDT"]
    assert sync_btc["sizing"]["target"] == "0.5"
    assert sync_btc["sizing"]["leader_position_after"] == "2"
