"""Fault-test tools: a leader that resends until acknowledged, stream checks, a TCP cutter."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import Counter
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake, WebSocketException

from app.domain.ids import order_id
from tests.support import bearer, eventually, fill_frame


class ResendingLeader:
    """A push-mode leader that sends fills in order and resends the first unacknowledged one
    after any failure, as a real leader-side agent must. It never skips a fill."""

    def __init__(self, ws_url: str, leader_id: str, token: str) -> None:
        self.url = f"{ws_url}/v1/leaders/{leader_id}/fills/ws"
        self.token = token
        self.sent = 0  # fills[:sent] are acknowledged
        self.acks: Counter[str] = Counter()
        self.stop = asyncio.Event()
        self.reconnects = 0

    @staticmethod
    def fill_ids(count: int) -> list[str]:
        return [f"f-{n:05d}" for n in range(count)]

    async def run(self, fills: list[str], *, price: str = "50000") -> None:
        # Stopping waits for the fill in flight to be acknowledged: it may already be
        # committed, and a real leader would not drop it either.
        in_flight = False
        while self.sent < len(fills) and (in_flight or not self.stop.is_set()):
            try:
                async with connect(
                    self.url, additional_headers=bearer(self.token), open_timeout=2
                ) as ws:
                    while self.sent < len(fills) and (in_flight or not self.stop.is_set()):
                        in_flight = True
                        fill_id = fills[self.sent]
                        await ws.send(fill_frame(fill_id, "BTCUSDT", "buy", "1", price))
                        reply = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
                        if reply["type"] == "error" and reply.get("retry"):
                            # Not recorded (the database was away): the server closes next,
                            # and this fill is the first one sent again.
                            raise ConnectionError(reply["error"])
                        assert reply["type"] == "ack", reply
                        assert reply["fill_id"] == fill_id, reply
                        self.acks[reply["status"]] += 1
                        self.sent += 1
                        in_flight = False
            except (OSError, TimeoutError, WebSocketException, InvalidHandshake):
                self.reconnects += 1
                await asyncio.sleep(0.02)


def expected_orders(leader_id: str, fill_ids: list[str], subscriptions: list[str]) -> set[str]:
    return {
        order_id(uuid.UUID(leader_id), f, uuid.UUID(s)) for f in fill_ids for s in subscriptions
    }


async def stream_order_ids(redis: Any, follower_ids: list[str]) -> Counter[str]:
    """The multiset of order ids across the followers' streams."""
    ids: Counter[str] = Counter()
    for follower_id in follower_ids:
        for _, fields in await redis.xrange(f"copytrade:orders:{{{follower_id}}}"):
            ids[json.loads(fields["order"])["order_id"]] += 1
    return ids


async def wait_for_orders(
    redis: Any, follower_ids: list[str], must_have: set[str], timeout_s: float = 15.0
) -> Counter[str]:
    """Wait until every id in ``must_have`` is in the streams; return what is there."""

    async def arrived() -> tuple[Counter[str]] | None:
        present = await stream_order_ids(redis, follower_ids)
        return (present,) if must_have <= present.keys() else None

    found: tuple[Counter[str]] = await eventually(
        arrived, f"{len(must_have)} orders in the streams", timeout_s
    )
    return found[0]


class TcpCutter:
    """A loopback TCP proxy that can cut every connection and refuse new ones for a while:
    to the service, its database "restarts"."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.difference_update((writer, up_writer))

    async def cut(self) -> None:
        """Stop listening and drop every open connection."""
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        if self._server:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def restore(self) -> None:
        await self.start()

    async def close(self) -> None:
        await self.cut()
