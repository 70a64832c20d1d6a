"""Three instances, one Postgres, one Redis: leaders spread by leases, a dead instance's
leaders taken over, no order lost or doubled, and the feed works from any instance.

The leaders' feeds are generic websocket feeds served here that replay every fill on each
connection (as a generic feed should: it has no backfill API), so an instance that takes a
leader over receives what it missed, and the database drops what was already recorded.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import connect

from tests.e2e.conftest import ServiceProcess, log_path_for
from tests.e2e.faults import expected_orders, wait_for_orders
from tests.e2e.feeds import ReplayingFeeds
from tests.support import Api, bearer, eventually, feed_subscribed, fill_frame

LEASE_TTL_S = 3.0
HEARTBEAT_S = 0.5
LEADERS = 6


@pytest.fixture
async def feeds() -> AsyncIterator[ReplayingFeeds]:
    server = ReplayingFeeds()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def cluster(
    clean: None, request: pytest.FixtureRequest
) -> AsyncIterator[list[ServiceProcess]]:
    instances = [
        ServiceProcess(
            log_path_for(request).with_suffix(f".{n}.log"),
            COPYTRADE_LEASE_TTL_S=str(LEASE_TTL_S),
            COPYTRADE_LEASE_HEARTBEAT_S=str(HEARTBEAT_S),
        )
        for n in range(3)
    ]
    try:
        for instance in instances:
            await instance.start()
        yield instances
    finally:
        for instance in instances:
            await instance.close()


async def owners(api: Api, leader_ids: list[str]) -> dict[str, str | None]:
    """Which instance (pid) runs each leader's listener, as any instance reports it."""
    result: dict[str, str | None] = {}
    for leader_id in leader_ids:
        listener = (await api.call("GET", f"/v1/leaders/{leader_id}", 200))["listener"]
        owner = listener.get("owner") if listener else None
        result[leader_id] = owner.split(":")[1] if owner else None
    return result


async def wait_owned(
    api: Api, leader_ids: list[str], pids: set[str], timeout_s: float = 30
) -> dict[str, str | None]:
    """Wait until every leader is run by one of ``pids``, each of them by at least one."""

    async def spread() -> dict[str, str | None] | None:
        current = await owners(api, leader_ids)
        return current if set(current.values()) == pids else None

    owned: dict[str, str | None] = await eventually(
        spread, f"the leaders spread over {sorted(pids)}", timeout_s, every_s=0.1
    )
    return owned


async def seed(api: Api, feeds: ReplayingFeeds) -> tuple[list[str], list[str], list[str], str]:
    """LEADERS generic leaders, one follower subscribed to all of them."""
    follower = await api.follower("everyone")
    await api.follower_equity(follower["id"], "10000")
    leader_ids, subscriptions = [], []
    for n in range(LEADERS):
        leader = await api.leader(f"L{n}", {"kind": "generic", "url": feeds.url(f"L{n}")})
        await api.leader_equity(leader["id"], "10000")
        subscriptions.append((await api.subscribe(follower["id"], leader["id"]))["id"])
        leader_ids.append(leader["id"])
    return leader_ids, subscriptions, [follower["id"]], follower["api_key"]


def fill(n: int) -> str:
    return fill_frame(f"f-{n:04d}", "BTCUSDT", "buy", "0.01", "50000")


async def test_leaders_spread_and_move_when_an_instance_dies(
    cluster: list[ServiceProcess], feeds: ReplayingFeeds, redis: Any
) -> None:
    # Arrange: six leaders, spread over three instances.
    api = Api(cluster[0].http)
    leader_ids, subscriptions, followers, _ = await seed(api, feeds)
    pids = {str(i.process.pid) for i in cluster if i.process}
    spread = await wait_owned(api, leader_ids, pids)
    assert set(spread.values()) == pids, f"leaders not spread over all instances: {spread}"

    # Act: a burst on every leader; halfway, SIGKILL the owner of the first leader.
    victim_pid = spread[leader_ids[0]]
    victim = next(i for i in cluster if i.process and str(i.process.pid) == victim_pid)
    moved = [lid for lid, pid in spread.items() if pid == victim_pid]
    for n in range(40):
        for index, _ in enumerate(leader_ids):
            await feeds.publish(f"L{index}", fill(n))
        if n == 20:
            await victim.kill()
        await asyncio.sleep(0.01)
    survivors = [i for i in cluster if i is not victim]
    survivor_pids = {str(i.process.pid) for i in survivors if i.process}
    after = await wait_owned(Api(survivors[0].http), leader_ids, survivor_pids)

    # Assert: the victim's leaders run elsewhere, once their leases have run out.
    assert moved
    assert set(after.values()) <= survivor_pids, f"leaders left on the dead instance: {after}"
    expected = set().union(
        *(
            expected_orders(lid, [f"f-{n:04d}" for n in range(40)], [sub])
            for lid, sub in zip(leader_ids, subscriptions, strict=True)
        )
    )
    present = await wait_for_orders(redis, followers, expected, timeout_s=60)
    assert not {oid: k for oid, k in present.items() if k > 1}, "an order enqueued twice"
    assert expected - present.keys() == set(), "orders missing after the takeover"
    assert present.keys() == expected


async def test_feed_on_one_instance_gets_orders_made_on_another(
    cluster: list[ServiceProcess], feeds: ReplayingFeeds, redis: Any
) -> None:
    # Arrange: a follower's feed socket on instance A; its leader run by another instance.
    api = Api(cluster[0].http)
    leader_ids, _, followers, api_key = await seed(api, feeds)
    pids = {str(i.process.pid) for i in cluster if i.process}
    spread = await wait_owned(api, leader_ids, pids)
    by_pid = {str(i.process.pid): i for i in cluster if i.process}
    index, (leader_id, owner) = next(
        (n, item)
        for n, item in enumerate(spread.items())
        if item[1] != str(cluster[0].process.pid if cluster[0].process else "")
    )
    assert owner is not None
    assert by_pid[owner] is not cluster[0]

    # Act
    async with connect(
        f"{cluster[0].ws_url}/v1/followers/{followers[0]}/orders/ws",
        additional_headers=bearer(api_key),
    ) as ws:
        await feed_subscribed(redis, followers[0])
        await feeds.publish(f"L{index}", fill(1))
        message = json.loads(await asyncio.wait_for(ws.recv(), timeout=20))

    # Assert
    assert message["type"] == "order"
    assert message["order"]["leader_id"] == leader_id
    assert message["order"]["leader_fill_id"] == "f-0001"
    assert message["order"]["qty"] == "0.01"
