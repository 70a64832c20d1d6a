"""End to end against the real service process: REST set-up, fills in, orders out.

Checks the exact orders in each follower's Redis stream and on each follower's websocket feed,
for push mode and for generic (client) mode against a websocket server run by the test.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve

from tests.e2e.conftest import ServiceProcess
from tests.support import Api, fill_frame, push_socket, read_stream, send_frame

# (fill_id, symbol, side, qty, price)
FILLS = [
    ("f-1", "BTCUSDT", "buy", "2", "50000"),
    ("f-2", "ETHUSDT", "sell", "3.7", "3000"),
    ("f-3", "BTCUSDT", "sell", "0.5", "51000"),
]
# Leader 100000; follower A 10000 (x1), follower B 25000 (x2). BTC step 0.001, ETH step 0.01.
EXPECTED = {
    "A": [("f-1", "buy", "0.2"), ("f-2", "sell", "0.37"), ("f-3", "sell", "0.05")],
    "B": [("f-1", "buy", "1"), ("f-2", "sell", "1.85"), ("f-3", "sell", "0.25")],
}


async def setup_accounts(api: Api, feed: dict[str, Any] | None = None) -> dict[str, Any]:
    leader = await api.leader("lead", feed)
    await api.leader_equity(leader["id"], "100000")
    await api.instrument("BTCUSDT", qty_step="0.001", min_qty="0.001", min_notional="5")
    await api.instrument("ETHUSDT", qty_step="0.01", min_qty="0.01", min_notional="5")
    accounts: dict[str, Any] = {"leader": leader}
    for name, equity, multiplier in (("A", "10000", "1"), ("B", "25000", "2")):
        follower = await api.follower(name)
        await api.follower_equity(follower["id"], equity)
        await api.subscribe(follower["id"], leader["id"], multiplier)
        accounts[name] = follower
    return accounts


@asynccontextmanager
async def feed_socket(
    service: ServiceProcess, follower: dict[str, Any]
) -> AsyncIterator[ClientConnection]:
    url = f"{service.ws_url}/v1/followers/{follower['id']}/orders/ws?token={follower['api_key']}"
    async with connect(url) as ws:
        yield ws


async def read_feed(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    return [json.loads(await asyncio.wait_for(ws.recv(), timeout=10)) for _ in range(count)]


def summary(orders: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(o["leader_fill_id"], o["side"], o["qty"]) for o in orders]


async def assert_orders(
    service: ServiceProcess, redis: Any, accounts: dict[str, Any], feeds: dict[str, Any]
) -> None:
    for name, expected in EXPECTED.items():
        follower = accounts[name]
        # The feed is read first: it waits for the orders, whatever the transport's pace.
        messages = await read_feed(feeds[name], len(expected))
        stream = await read_stream(redis, follower["id"])
        assert summary(stream) == expected, name
        assert all(o["follower_id"] == follower["id"] for o in stream)
        assert all(o["leader_id"] == accounts["leader"]["id"] for o in stream)
        assert len({o["order_id"] for o in stream}) == len(stream)
        assert [m["status"] for m in messages] == ["dispatched"] * len(expected)
        assert [m["order"] for m in messages] == stream


async def test_push_mode_end_to_end(service: ServiceProcess, redis: Any) -> None:
    # Arrange
    api = Api(service.http)
    accounts = await setup_accounts(api)
    leader = accounts["leader"]

    async with (
        feed_socket(service, accounts["A"]) as feed_a,
        feed_socket(service, accounts["B"]) as feed_b,
    ):
        # Act
        async with push_socket(service.ws_url, leader["id"], leader["push_token"]) as ws:
            acks = [await send_frame(ws, fill_frame(*fill)) for fill in FILLS]
            replay = await send_frame(ws, fill_frame(*FILLS[0]))
            assert ws.response is not None
            extensions = ws.response.headers.get("Sec-WebSocket-Extensions")

        # Assert: the client offered permessage-deflate; the service declines it by default
        # (COPYTRADE_WS_COMPRESSION), on the feed sockets too.
        assert extensions is None
        for feed in (feed_a, feed_b):
            assert feed.response is not None
            assert feed.response.headers.get("Sec-WebSocket-Extensions") is None
        assert [a["status"] for a in acks] == ["accepted"] * 3
        assert replay == {"type": "ack", "fill_id": "f-1", "status": "duplicate"}
        await assert_orders(service, redis, accounts, {"A": feed_a, "B": feed_b})
        # The duplicate produced nothing, on the feed either: the next order each feed
        # carries is a later fill's (anything the duplicate sent was published before it).
        async with push_socket(service.ws_url, leader["id"], leader["push_token"]) as ws:
            later = await send_frame(ws, fill_frame("f-4", "BTCUSDT", "buy", "1", "50000"))
        assert later["status"] == "accepted"
        for feed in (feed_a, feed_b):
            [after] = await read_feed(feed, 1)
            assert after["order"]["leader_fill_id"] == "f-4"


class FakeLeaderFeed:
    """A generic-format leader feed: sends scripted frames to whoever connects."""

    def __init__(self) -> None:
        self.connections: asyncio.Queue[ServerConnection] = asyncio.Queue()

    async def handler(self, ws: ServerConnection) -> None:
        await self.connections.put(ws)
        await ws.wait_closed()


async def test_generic_mode_end_to_end_with_reconnect(service: ServiceProcess, redis: Any) -> None:
    # Arrange
    upstream = FakeLeaderFeed()
    async with serve(upstream.handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        api = Api(service.http)
        accounts = await setup_accounts(api, {"kind": "generic", "url": f"ws://127.0.0.1:{port}"})

        async with (
            feed_socket(service, accounts["A"]) as feed_a,
            feed_socket(service, accounts["B"]) as feed_b,
        ):
            # Act: one fill and a malformed frame, then the connection drops...
            first = await asyncio.wait_for(upstream.connections.get(), timeout=10)
            await first.send(fill_frame(*FILLS[0]))
            await first.send("{not json")
            await first.send(json.dumps({"type": "mystery"}))
            await first.close()
            # ...the service reconnects; the feed replays f-1 and sends the rest.
            second = await asyncio.wait_for(upstream.connections.get(), timeout=10)
            for fill in FILLS:
                await second.send(fill_frame(*fill))

            # Assert
            await assert_orders(service, redis, accounts, {"A": feed_a, "B": feed_b})

        leader = await api.call("GET", f"/v1/leaders/{accounts['leader']['id']}", 200)
        assert leader["listener"]["state"] == "connected"
        assert leader["listener"]["reconnects"] >= 1
        metrics = (await service.http.get("/metrics")).text
        assert 'copytrade_frames_rejected_total{source="generic"} 2.0' in metrics
        assert 'copytrade_fills_total{status="duplicate"} 1.0' in metrics
