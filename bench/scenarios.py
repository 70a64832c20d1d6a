"""The measurements: latency, fan-out, sustained throughput, feed; each also for the baseline."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect

from app.dispatch.keys import order_stream
from bench.seed import Group


def frame(fill_id: str, side: str = "buy", qty: str = "1", price: str = "50000") -> str:
    return json.dumps(
        {"type": "fill", "fill_id": fill_id, "symbol": "BTCUSDT", "side": side, "qty": qty,
         "price": price}
    )  # fmt: skip


async def push(ws_url: str, group: Group) -> ClientConnection:
    return await connect(
        f"{ws_url}/v1/leaders/{group.leader_id}/fills/ws",
        additional_headers={"Authorization": f"Bearer {group.push_token}"},
        max_size=2**20,
    )


async def wait_entry(redis: Redis, stream: str, last_id: str) -> str:
    """Block until an entry after ``last_id`` is readable; return its id."""
    while True:
        response: Any = await redis.xread({stream: last_id}, count=1, block=5000)
        if response:
            entry_id: bytes = response[0][1][0][0]
            return entry_id.decode()


def side_for(n: int) -> str:
    # Alternate so that position-aware sizing keeps producing orders of the same size.
    return "buy" if n % 2 == 0 else "sell"


async def _timed_fill(
    ws: ClientConnection, redis: Redis, stream: str, last_id: str, fill_id: str, side: str
) -> tuple[float, str]:
    """Send one fill; return the time from the frame sent to its order readable in
    ``stream`` (after ``last_id``), and that entry's id. The ack is read after the clock."""
    waiter = asyncio.create_task(wait_entry(redis, stream, last_id))
    await asyncio.sleep(0)
    started = time.perf_counter()
    await ws.send(frame(fill_id, side))
    entry_id = await waiter
    elapsed = time.perf_counter() - started
    ack = json.loads(await ws.recv())
    assert ack.get("status") == "accepted", ack
    return elapsed, entry_id


async def latency(ws_url: str, redis: Redis, group: Group, fills: int) -> list[float]:
    """Frame sent -> order readable in the follower's stream, one fill at a time."""
    stream = order_stream(group.followers[0])
    last_id = "$"
    samples = []
    ws = await push(ws_url, group)
    try:
        for n in range(50 + fills):  # the first 50 warm up caches and connections
            elapsed, last_id = await _timed_fill(
                ws, redis, stream, last_id, f"lat-{n}", side_for(n)
            )
            if n >= 50:
                samples.append(elapsed)
    finally:
        await ws.close()
    return samples


async def latency_paced(
    ws_url: str, redis: Redis, group: Group, duration_s: float, interval_s: float = 0.02
) -> list[float]:
    """Frame sent -> order readable in the stream, one fill every ``interval_s`` for
    ``duration_s``: long enough to meet the service's periodic work (report reads and
    reclaims, equity resyncs, refreshes), which a burst of back-to-back fills may miss."""
    stream = order_stream(group.followers[0])
    last_id = "$"
    samples = []
    ws = await push(ws_url, group)
    try:
        deadline = time.perf_counter() + duration_s
        n = 0
        while (slot := time.perf_counter()) < deadline:
            elapsed, last_id = await _timed_fill(
                ws, redis, stream, last_id, f"latp-{n}", side_for(n)
            )
            samples.append(elapsed)
            n += 1
            await asyncio.sleep(max(0.0, interval_s - (time.perf_counter() - slot)))
    finally:
        await ws.close()
    return samples


async def fanout(
    ws_url: str, redis: Redis, group: Group, fills: int, warmup: int = 2
) -> list[float]:
    """Frame sent -> ack. The ack follows the commit and the enqueue of every order."""
    samples = []
    ws = await push(ws_url, group)
    last = order_stream(group.followers[-1])
    try:
        for n in range(warmup + fills):
            before = await redis.xlen(last)
            started = time.perf_counter()
            await ws.send(frame(f"fan-{n}", side_for(n)))
            ack = json.loads(await ws.recv())
            elapsed = time.perf_counter() - started
            assert ack.get("status") == "accepted", ack
            assert await redis.xlen(last) == before + 1, "last follower's order not in stream"
            if n >= warmup:
                samples.append(elapsed)
    finally:
        await ws.close()
    return samples


async def _leader_loop(
    ws_url: str, group: Group, deadline: float, samples: list[float], tag: str
) -> int:
    ws = await push(ws_url, group)
    sent = 0
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await ws.send(frame(f"{tag}-{sent}", side_for(sent)))
            ack = json.loads(await ws.recv())
            assert ack.get("status") == "accepted", ack
            samples.append(time.perf_counter() - started)
            sent += 1
    finally:
        await ws.close()
    return sent


async def throughput(
    ws_url: str | list[str], groups: list[Group], duration_s: float, tag: str = "tp"
) -> tuple[float, list[float], float]:
    """All leaders fill as fast as they are acknowledged. Returns (orders/s, latencies, secs).

    With several service instances (``ws_url`` a list), leader i goes to instance i mod n, as
    a load balancer would spread them. ``tag`` keeps fill ids apart between runs on the same
    leaders. Each leader's first fill (its book loaded, its statements prepared) is sent and
    acknowledged before the clock starts, as the other measurements warm up too."""
    urls = [ws_url] if isinstance(ws_url, str) else ws_url
    for i, group in enumerate(groups):
        ws = await push(urls[i % len(urls)], group)
        try:
            await ws.send(frame(f"{tag}{i}-warm", "buy"))
            ack = json.loads(await ws.recv())
            assert ack.get("status") == "accepted", ack
        finally:
            await ws.close()
    samples: list[float] = []
    started = time.perf_counter()
    deadline = started + duration_s
    counts = await asyncio.gather(
        *(
            _leader_loop(urls[i % len(urls)], g, deadline, samples, f"{tag}{i}")
            for i, g in enumerate(groups)
        )
    )
    elapsed = time.perf_counter() - started
    orders = sum(c * len(g.subscriptions) for c, g in zip(counts, groups, strict=True))
    return orders / elapsed, samples, elapsed


async def _paced_leader(
    ws_url: str,
    group: Group,
    interval_s: float,
    first_at: float,
    deadline: float,
    samples: list[float],
    tag: str,
) -> int:
    """Send a fill every ``interval_s`` whatever the acks do; time each from its slot."""
    ws = await push(ws_url, group)
    due: dict[str, float] = {}
    sending = True

    async def read_acks() -> None:
        async for raw in ws:
            ack = json.loads(raw)
            assert ack.get("status") == "accepted", ack
            # From the moment the fill was due, not when it went out: a late send is latency
            # too (no coordinated omission).
            samples.append(time.perf_counter() - due.pop(ack["fill_id"]))
            if not sending and not due:
                return

    reader = asyncio.create_task(read_acks())
    sent = 0
    try:
        slot = first_at
        while slot < deadline:
            await asyncio.sleep(max(0.0, slot - time.perf_counter()))
            fill_id = f"{tag}-{sent}"
            due[fill_id] = slot
            await ws.send(frame(fill_id, side_for(sent)))
            sent += 1
            slot += interval_s
        sending = False
        if due:
            await asyncio.wait_for(reader, timeout=300)
    finally:
        reader.cancel()
        await ws.close()
    return sent


async def paced(
    ws_url: str, groups: list[Group], orders_per_s: float, duration_s: float, tag: str = "pace"
) -> tuple[float, list[float]]:
    """Open loop: fills at a fixed total rate of ``orders_per_s`` follower orders, spread
    evenly over the leaders and over time. Returns (orders/s achieved, fill latencies).
    ``tag`` keeps fill ids apart between runs on the same leaders."""
    samples: list[float] = []
    fills_per_s = orders_per_s / sum(len(g.subscriptions) for g in groups) * len(groups)
    interval = len(groups) / fills_per_s  # per leader
    started = time.perf_counter() + 0.5
    deadline = started + duration_s
    counts = await asyncio.gather(
        *(
            _paced_leader(
                ws_url, g, interval, started + i * interval / len(groups), deadline, samples,
                f"{tag}{i}",
            )
            for i, g in enumerate(groups)
        )
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    orders = sum(c * len(g.subscriptions) for c, g in zip(counts, groups, strict=True))
    return orders / elapsed, samples


# The service's COPYTRADE_ORDER_TTL_S (its default; bench.service does not set it).
ORDER_TTL = timedelta(seconds=30)


def sized_at(order: dict[str, Any]) -> datetime:
    """When an order was sized: version 1's ``created_at``; version 2 has none, so its
    ``valid_until`` less the order TTL: the fill's time, which the service stamps as it
    receives the bench's fills (they carry none)."""
    if "created_at" in order:
        return datetime.fromisoformat(order["created_at"])
    return datetime.fromisoformat(order["valid_until"]) - ORDER_TTL


class FeedWatchers:
    """Websocket subscribers on followers' order feeds, recording delivery latency."""

    def __init__(self, ws_url: str, admin_token: str, follower_ids: list[Any]) -> None:
        self.urls = [
            f"{ws_url}/v1/followers/{fid}/orders/ws?token={admin_token}" for fid in follower_ids
        ]
        self.samples: list[float] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.connected = 0

    async def start(self) -> None:
        for url in self.urls:
            self._tasks.append(asyncio.create_task(self._watch(url)))
        for _ in range(400):
            if self.connected == len(self.urls):
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"only {self.connected}/{len(self.urls)} feed sockets connected")

    async def _watch(self, url: str) -> None:
        async with connect(url, max_size=2**20) as ws:
            self.connected += 1
            async for raw in ws:
                received = datetime.now(UTC)
                message = json.loads(raw)
                if message.get("type") == "order":
                    self.samples.append((received - sized_at(message["order"])).total_seconds())

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
