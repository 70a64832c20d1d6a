"""A fill pushed over the leader websocket becomes exact orders in Redis and Postgres."""

from __future__ import annotations

from typing import Any

from tests.support import Api, LiveServer, fill_frame, push_socket, read_stream, send_frame


async def test_fill_becomes_proportional_order_in_stream(server: LiveServer, redis: Any) -> None:
    # Arrange
    api = Api(server.http)
    leader = await api.leader()
    follower = await api.follower()
    await api.leader_equity(leader["id"], "100000")
    await api.follower_equity(follower["id"], "10000")
    await api.instrument("BTCUSDT", qty_step="0.001", min_qty="0.001", min_notional="5")
    sub = await api.subscribe(follower["id"], leader["id"])

    # Act
    async with push_socket(server.ws_url, leader["id"], leader["push_token"]) as ws:
        ack = await send_frame(ws, fill_frame("f-1", "BTCUSDT", "buy", "2", "50000"))
        dup = await send_frame(ws, fill_frame("f-1", "BTCUSDT", "buy", "2", "50000"))

    # Assert
    assert ack == {"type": "ack", "fill_id": "f-1", "status": "accepted"}
    assert dup == {"type": "ack", "fill_id": "f-1", "status": "duplicate"}
    orders = await read_stream(redis, follower["id"])
    assert len(orders) == 1
    order = orders[0]
    assert order["qty"] == "0.2"
    assert order["side"] == "buy"
    assert order["symbol"] == "BTCUSDT"
    assert order["subscription_id"] == sub["id"]
    assert order["leader_fill_id"] == "f-1"
    history = await api.settled_orders(follower["id"])
    assert history[0]["sizing"]["ratio"] == "0.1"
    assert [o["order_id"] for o in history] == [order["order_id"]]
    assert history[0]["status"] == "dispatched"
