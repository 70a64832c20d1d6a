"""The order path on a real Redis Cluster: three redis-server nodes started here, on loopback.

Each script call must touch one slot: orders are grouped by their follower's hash tag, and
the cluster refuses (CROSSSLOT) any call that would not be.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from app.dispatch.enqueue import CHUNK, Enqueuer, OutboxItem, slot_batches
from app.dispatch.keys import dedupe_key, feed_channel, order_stream

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None or shutil.which("redis-cli") is None,
    reason="redis-server and redis-cli are needed to start a cluster",
)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        # Cluster nodes also listen on port + 10000: keep both under 65536.
        ports = [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    return ports if all(p < 55000 for p in ports) else _free_ports(count)


@pytest.fixture(scope="module")
def cluster_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    ports = _free_ports(3)
    root = tmp_path_factory.mktemp("redis-cluster")
    procs = []
    for port in ports:
        node_dir = Path(root, str(port))
        node_dir.mkdir()
        procs.append(
            subprocess.Popen(
                [
                    "redis-server", "--port", str(port), "--bind", "127.0.0.1",
                    "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                    "--save", "", "--appendonly", "no", "--dir", str(node_dir),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
    try:
        for port in ports:
            for _ in range(200):
                if (
                    subprocess.run(
                        ["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True
                    ).stdout.strip()
                    == "PONG"
                ):
                    break
                subprocess.run(["sleep", "0.05"])
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True,
        )  # fmt: skip
        for _ in range(200):
            info = subprocess.run(
                ["redis-cli", "-p", str(ports[0]), "cluster", "info"],
                capture_output=True,
                text=True,
            ).stdout
            if "cluster_state:ok" in info:
                break
            subprocess.run(["sleep", "0.05"])
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


@pytest.fixture
async def cluster(cluster_nodes: list[int]) -> AsyncIterator[RedisCluster]:
    client = RedisCluster(host="127.0.0.1", port=cluster_nodes[0], decode_responses=False)
    await client.initialize()
    yield client
    await client.flushall()
    await client.aclose()


def _items(followers: list[uuid.UUID], per_follower: int) -> list[OutboxItem]:
    items = []
    for n in range(per_follower):
        for follower in followers:
            order_id = f"o-{follower}-{n}"
            payload = json.dumps({"order_id": order_id, "follower_id": str(follower)})
            items.append(OutboxItem(order_id, follower, payload))
    return items


def test_every_batch_lives_in_one_slot_and_every_order_in_one_batch() -> None:
    # Arrange
    followers = [uuid.uuid4() for _ in range(300)]
    items = [
        *_items(followers, 2),
        OutboxItem("skipped-1", followers[0], "{}", "rounds_to_zero", skipped=True),
    ]

    # Act
    batches = slot_batches(items)

    # Assert
    sent = [item.order_id for batch in batches for item in batch]
    assert sorted(sent) == sorted(i.order_id for i in items if not i.skipped)
    for batch in batches:
        assert 0 < len(batch) <= CHUNK
        slots = {
            key_slot(key.encode())
            for item in batch
            for key in (
                order_stream(item.follower_id),
                dedupe_key(item.follower_id, item.order_id),
                feed_channel(item.follower_id),
            )
        }
        assert len(slots) == 1


async def test_enqueue_on_a_cluster_adds_each_order_once(cluster: RedisCluster) -> None:
    # Arrange: 300 followers spread over the three nodes' slots, two orders each.
    followers = [uuid.uuid4() for _ in range(300)]
    items = _items(followers, 2)
    enqueuer = Enqueuer(cluster, dedupe_ttl_s=3600)

    # Act: the second and third sends are retries (the outbox relay does that).
    confirmed = await enqueuer.enqueue(items)
    again = await asyncio.gather(enqueuer.enqueue(items[:100]), enqueuer.enqueue(items))

    # Assert
    assert sorted(confirmed) == sorted(i.order_id for i in items)
    assert sorted(again[1]) == sorted(confirmed)
    for follower in followers:
        entries = await cluster.xrange(order_stream(follower)) or []
        ids = [json.loads((fields or {})[b"order"])["order_id"] for _, fields in entries]
        assert ids == [f"o-{follower}-0", f"o-{follower}-1"]


async def test_enqueue_reloads_the_script_a_node_forgot(cluster: RedisCluster) -> None:
    # Arrange
    follower = uuid.uuid4()
    enqueuer = Enqueuer(cluster, dedupe_ttl_s=3600)
    await enqueuer.enqueue(_items([follower], 1))
    await cluster.script_flush()

    # Act
    confirmed = await enqueuer.enqueue(_items([uuid.uuid4()], 1) + _items([follower], 2))

    # Assert
    assert len(confirmed) == 3
    assert len(await cluster.xrange(order_stream(follower)) or []) == 2
