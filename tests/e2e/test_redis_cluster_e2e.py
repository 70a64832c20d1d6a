"""The real service on a real Redis Cluster (three nodes started here): fills pushed to it
end as exactly one order in each follower's stream, whatever node holds it; the feed socket
gets them; executor reports written to the cluster come back as order status."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from websockets.asyncio.client import connect

from app.dispatch.keys import order_stream, report_stream
from tests.cluster import needs_redis_binaries, redis_cluster
from tests.e2e.conftest import ServiceProcess, log_path_for
from tests.e2e.faults import expected_orders
from tests.support import (
    Api,
    bearer,
    eventually,
    feed_subscribed,
    fill_frame,
    push_socket,
    send_frame,
)

pytestmark = needs_redis_binaries
FOLLOWERS = 12
FILLS = 5


@pytest.fixture(scope="module")
def cluster_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    with redis_cluster(tmp_path_factory.mktemp("redis-cluster-e2e")) as ports:
        yield ports


@pytest.fixture
async def cluster(cluster_nodes: list[int]) -> AsyncIterator[RedisCluster]:
    client = RedisCluster(host="127.0.0.1", port=cluster_nodes[0])
    await client.initialize()
    yield client
    await client.flushall()
    await client.aclose()


@pytest.fixture
async def service_on_cluster(
    clean: None, cluster: RedisCluster, cluster_nodes: list[int], request: pytest.FixtureRequest
) -> AsyncIterator[ServiceProcess]:
    proc = ServiceProcess(
        log_path_for(request),
        COPYTRADE_REDIS_URL=f"redis://127.0.0.1:{cluster_nodes[1]}/0",
        COPYTRADE_REDIS_CLUSTER="true",
        COPYTRADE_REPORT_BLOCK_MS="100",
    )
    await proc.start()
    await proc.wait_ready()
    try:
        yield proc
    finally:
        await proc.close()


async def test_the_service_runs_on_a_redis_cluster(
    service_on_cluster: ServiceProcess, cluster: RedisCluster, cluster_nodes: list[int]
) -> None:
    # Arrange: followers whose streams spread over the three nodes' slots.
    service = service_on_cluster
    api = Api(service.http)
    leader = await api.leader()
    await api.leader_equity(leader["id"], "100000")
    followers, subscriptions = [], []
    for n in range(FOLLOWERS):
        follower = await api.follower(f"f{n}")
        await api.follower_equity(follower["id"], "10000")
        subscriptions.append((await api.subscribe(follower["id"], leader["id"]))["id"])
        followers.append(follower)
    fill_ids = [f"f-{n}" for n in range(FILLS)]

    # Act: fills pushed while a feed socket of the first follower listens.
    feed_url = f"{service.ws_url}/v1/followers/{followers[0]['id']}/orders/ws"
    async with connect(feed_url, additional_headers=bearer(followers[0]["api_key"])) as feed:
        # The service's pub/sub runs on the node it is configured with; NUMSUB is per node.
        async with Redis(port=cluster_nodes[1]) as node:
            await feed_subscribed(node, followers[0]["id"])
        async with push_socket(service.ws_url, leader["id"], leader["push_token"]) as ws:
            acks = [
                await send_frame(ws, fill_frame(f, "BTCUSDT", "buy", "0.1", "50000"))
                for f in fill_ids
            ]
        fed = [json.loads(await asyncio.wait_for(feed.recv(), 20)) for _ in fill_ids]

    # Assert: every order once, in its follower's stream, on whichever node holds it.
    assert [a["status"] for a in acks] == ["accepted"] * FILLS
    present: dict[str, int] = {}
    for follower in followers:
        for _, fields in await cluster.xrange(order_stream(follower["id"])) or []:
            oid = json.loads((fields or {})[b"order"])["order_id"]
            present[oid] = present.get(oid, 0) + 1
    assert set(present) == expected_orders(leader["id"], fill_ids, subscriptions)
    assert set(present.values()) == {1}
    assert [m["order"]["leader_fill_id"] for m in fed] == fill_ids
    nodes = {
        cluster.get_node_from_key(order_stream(f["id"])).port  # type: ignore[union-attr]
        for f in followers
    }
    assert len(nodes) > 1, "the followers' streams all landed on one node"

    # Act: an executor reports the first order filled, on the cluster.
    first = fed[0]["order"]
    report = {
        "order_id": first["order_id"],
        "status": "filled",
        "filled_qty": first["qty"],
        "avg_price": "50000",
    }
    await cluster.xadd(report_stream(followers[0]["id"]), {"report": json.dumps(report)})

    # Assert: the report reader (per-slot reads on a cluster) applied it.
    async def filled() -> bool:
        order = await api.call(
            "GET", f"/v1/followers/{followers[0]['id']}/orders/{first['order_id']}", 200
        )
        return bool(order["status"] == "filled")

    await eventually(filled, "the first order filled by the report")
