"""Order-feed sockets that stop reading cost bounded memory and are closed; a socket that
reads alongside them gets every order."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import AsyncIterator
from urllib.parse import urlparse

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from app.dispatch.keys import feed_channel
from app.feed.ws import SLOW_REASON
from tests.conftest import TEST_REDIS_URL, make_settings
from tests.support import ADMIN_TOKEN, Api, LiveServer, eventually, start_live_server

SLOW = 50
# Several times what a socket that stops reading can absorb (its 1 MB queue, and the loopback
# socket buffers of a few MB): each slow socket must overflow, whatever the kernel's tuning.
ORDERS = 10_000
BATCH = 200
PAD = "x" * 900  # about 1 KB a message, like an order with its sizing explanation
MB = 1024 * 1024


@pytest.fixture
async def feed_server(clean: None) -> AsyncIterator[LiveServer]:
    settings = make_settings(feed_queue_bytes=1024 * 1024, feed_send_timeout_s=1.0)
    async with start_live_server(settings) as live:
        yield live


def rss_bytes() -> int:
    """This process's resident memory now (the service runs in it)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def slow_closes() -> float:
    return sum(
        metric("copytrade_feed_slow_closed_total", reason=why)
        for why in ("send_timeout", "queue_full")
    )


async def never_reading(url: str) -> ClientConnection:
    """A client that takes in a handful of messages and then reads nothing: a small receive
    buffer, and the client library stops reading once its own queue holds a few."""
    parsed = urlparse(url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (parsed.hostname, parsed.port))
    return await connect(url, sock=sock, max_queue=4, ping_interval=None)


async def read_to_the_end(ws: ClientConnection) -> tuple[int | None, str | None]:
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout=30)
    except ConnectionClosed as closed:
        frame = closed.rcvd
        return (frame.code, frame.reason) if frame else (None, None)


async def test_sockets_that_never_read_are_closed_and_cost_bounded_memory(
    feed_server: LiveServer,
) -> None:
    # Arrange: one follower's feed, 50 sockets that never read and one that does.
    server = feed_server
    follower = await Api(server.http).follower()
    url = f"{server.ws_url}/v1/followers/{follower['id']}/orders/ws?token={ADMIN_TOKEN}"
    open_before = metric("copytrade_feed_sockets")
    closes_before = slow_closes()
    at_rest = rss_bytes()
    slow = [await never_reading(url) for _ in range(SLOW)]
    received: list[int] = []

    async def read_all(ws: ClientConnection) -> None:
        while len(received) < ORDERS:
            received.append(json.loads(await ws.recv())["n"])

    async def subscribed() -> bool:
        return metric("copytrade_feed_sockets") == open_before + SLOW + 1

    redis = Redis.from_url(TEST_REDIS_URL)
    try:
        async with connect(url) as normal:
            reader = asyncio.create_task(read_all(normal))
            await eventually(subscribed, "every socket to be subscribed", 30)

            # Act: 20,000 orders on the follower's channel, a batch at a time as the reading
            # socket takes them (a normal client reads at the pace orders come).
            channel = feed_channel(follower["id"])
            for first in range(0, ORDERS, BATCH):
                async with redis.pipeline(transaction=False) as pipe:
                    for n in range(first, first + BATCH):
                        pipe.publish(channel, json.dumps({"type": "order", "n": n, "pad": PAD}))
                    await pipe.execute()

                async def caught_up(upto: int = first + BATCH) -> bool:
                    return len(received) >= upto

                await eventually(caught_up, "the reading socket to keep up", 60)
            await asyncio.wait_for(reader, timeout=120)
            peak = rss_bytes()

            async def slow_ones_closed() -> bool:
                return slow_closes() - closes_before == SLOW

            await eventually(slow_ones_closed, "the slow sockets to be closed", 60)

            async def only_the_reader_left() -> bool:
                return metric("copytrade_feed_sockets") == open_before + 1

            await eventually(only_the_reader_left, "slow sockets to be let go", 30)
        endings = [await read_to_the_end(ws) for ws in slow]
    finally:
        await redis.aclose()
        for ws in slow:
            await ws.close()

    # Assert: every order reached the reader, in order; the slow sockets were closed (1013
    # with the reason, where the close frame got through before the server let go).
    assert received == list(range(ORDERS))
    assert peak - at_rest < 300 * MB
    assert all(ending in ((1013, SLOW_REASON), (None, None)) for ending in endings)
