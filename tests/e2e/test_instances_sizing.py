"""Two instances, one leader: every fill is sized from the positions the database holds.

Each instance caches a leader's book. A push socket that moves between instances (as a load
balancer moves it after a blip), or a leased feed that leaves an instance and comes back, has
the other instance record fills in between; the book the first instance kept is then old, and
a fill sized from it goes out wrong (a new short as a reduce_only sell, a reversal as one
order through zero, a close without reduce_only). Every order is checked: leg, side, qty,
reduce_only, and the leader position its explanation names.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.domain.ids import order_id
from tests.e2e.conftest import ServiceProcess, log_path_for
from tests.e2e.feeds import ReplayingFeeds
from tests.support import Api, eventually, fill_frame, push_socket, read_stream, send_frame

LEASE_TTL_S = 3.0
HEARTBEAT_S = 0.5
SYMBOL, PRICE = "SOLUSDT", "100"

Leg = tuple[int, str, str, bool]  # (leg, side, qty, reduce_only)
# (instance, fill_id, side, qty, leader position before, the follower's orders). The leader
# holds 100,000, the follower 10,000: its target is a tenth of the leader's position.
PUSH_SCRIPT: list[tuple[int, str, str, str, str, list[Leg]]] = [
    (0, "p-1", "buy", "1", "0", [(0, "buy", "0.1", False)]),  # open: 1
    (1, "p-2", "sell", "1", "1", [(0, "sell", "0.1", True)]),  # close: 0
    (0, "p-3", "sell", "1", "0", [(0, "sell", "0.1", False)]),  # a new short: -1
    (1, "p-4", "buy", "2", "-1", [(0, "buy", "0.1", True), (1, "buy", "0.1", False)]),  # 1
    (0, "p-5", "sell", "1", "1", [(0, "sell", "0.1", True)]),  # close: 0
    (1, "p-6", "buy", "1", "0", [(0, "buy", "0.1", False)]),  # open: 1
    (0, "p-7", "sell", "2", "1", [(0, "sell", "0.1", True), (1, "sell", "0.1", False)]),  # -1
]


@pytest.fixture
async def pair(clean: None, request: pytest.FixtureRequest) -> AsyncIterator[list[ServiceProcess]]:
    instances = [
        ServiceProcess(
            log_path_for(request).with_suffix(f".{n}.log"),
            COPYTRADE_LEASE_TTL_S=str(LEASE_TTL_S),
            COPYTRADE_LEASE_HEARTBEAT_S=str(HEARTBEAT_S),
        )
        for n in range(2)
    ]
    try:
        for instance in instances:
            await instance.start()
        yield instances
    finally:
        for instance in instances:
            if instance.process and instance.process.returncode is None:
                instance.process.send_signal(signal.SIGCONT)
            await instance.close()


@pytest.fixture
async def feeds() -> AsyncIterator[ReplayingFeeds]:
    server = ReplayingFeeds()
    await server.start()
    yield server
    await server.close()


async def follow(api: Api, leader: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The leader at 100,000, a follower at 10,000 subscribed to it; SOLUSDT in 0.01 steps."""
    await api.instrument(SYMBOL, qty_step="0.01", min_qty="0.01", min_notional="5")
    await api.leader_equity(leader["id"], "100000")
    follower = await api.follower("small")
    await api.follower_equity(follower["id"], "10000")
    subscription = await api.subscribe(follower["id"], leader["id"])
    return follower, subscription["id"]


def expected(
    leader_id: str, subscription_id: str, fill_id: str, before: str, legs: list[Leg]
) -> list[tuple[str, str, str, str, bool, str]]:
    ids = uuid.UUID(leader_id), uuid.UUID(subscription_id)
    return [
        (order_id(ids[0], fill_id, ids[1], leg), fill_id, side, qty, reduce_only, before)
        for leg, side, qty, reduce_only in legs
    ]


async def got(api: Api, stream: list[dict[str, Any]]) -> list[tuple[str, str, str, str, bool, str]]:
    """The stream's orders, each with the leader's position it was sized at (from the
    order's explanation link)."""
    return [
        (
            o["order_id"],
            o["leader_fill_id"],
            o["side"],
            o["qty"],
            o["reduce_only"],
            (await api.call("GET", o["explanation"], 200))["sizing"]["leader_position_before"],
        )
        for o in stream
    ]


async def wait_stream(redis: Any, follower_id: str, count: int) -> list[dict[str, Any]]:
    """The follower's stream once it holds ``count`` orders."""

    async def enough() -> list[dict[str, Any]] | None:
        stream = await read_stream(redis, follower_id)
        return stream if len(stream) >= count else None

    stream: list[dict[str, Any]] = await eventually(enough, f"{count} orders", within_s=30)
    return stream


async def test_a_push_leader_alternating_between_instances_is_sized_from_the_database(
    pair: list[ServiceProcess], redis: Any
) -> None:
    # Arrange
    api = Api(pair[0].http)
    leader = await api.leader("pusher")
    follower, subscription_id = await follow(api, leader)
    want = []
    for _, fill_id, _, _, before, legs in PUSH_SCRIPT:
        want += expected(leader["id"], subscription_id, fill_id, before, legs)

    # Act: each fill on one instance, the next on the other.
    for instance, fill_id, side, qty, _, _ in PUSH_SCRIPT:
        service = pair[instance]
        async with push_socket(service.ws_url, leader["id"], leader["push_token"]) as ws:
            ack = await send_frame(ws, fill_frame(fill_id, SYMBOL, side, qty, PRICE))
            assert ack == {"type": "ack", "fill_id": fill_id, "status": "accepted"}

    # Assert: every order as the database's positions size it, nothing else, nothing skipped.
    stream = await wait_stream(redis, follower["id"], len(want))
    assert await got(api, stream) == want
    orders = await api.settled_orders(follower["id"], timeout_s=30)
    assert sorted(o["order_id"] for o in orders) == sorted(o[0] for o in want)
    assert {o["status"] for o in orders} == {"dispatched"}
    rows = await api.call(
        "GET", f"/v1/followers/{follower['id']}/positions", 200, token=follower["api_key"]
    )
    assert [(r["symbol"], r["position"], r["leader_position"]) for r in rows] == [
        (SYMBOL, "-0.1", "-1")
    ]


def pid(service: ServiceProcess) -> str:
    assert service.process is not None
    return str(service.process.pid)


async def owner_of(service: ServiceProcess, leader_id: str) -> str | None:
    """The pid of the instance running the leader's feed, as ``service`` sees it."""
    leader = await Api(service.http).call("GET", f"/v1/leaders/{leader_id}", 200)
    listener = leader["listener"]
    return listener["owner"].split(":")[1] if listener and listener.get("owner") else None


async def wait_owner(service: ServiceProcess, leader_id: str, owner: str | None) -> str:
    """Poll ``service``'s view until the feed runs on the ``owner`` pid (None: on any instance
    but ``service`` itself); return the owner's pid."""

    async def moved() -> str | None:
        current = await owner_of(service, leader_id)
        if current is not None and (current == owner if owner else current != pid(service)):
            return current
        return None

    where = owner or f"an instance other than {pid(service)}"
    found: str = await eventually(moved, f"the feed on {where}", within_s=90, every_s=0.1)
    return found


# (fill_id, side, qty, leader position before, the follower's orders)
LEASE_SCRIPT: list[tuple[str, str, str, str, list[Leg]]] = [
    ("g-1", "buy", "1", "0", [(0, "buy", "0.1", False)]),  # open: 1
    ("g-2", "sell", "1", "1", [(0, "sell", "0.1", True)]),  # close: 0, on the other instance
    ("g-3", "sell", "1", "0", [(0, "sell", "0.1", False)]),  # back: a new short, -1
    ("g-4", "buy", "2", "-1", [(0, "buy", "0.1", True), (1, "buy", "0.1", False)]),  # 1
]


async def test_a_lease_that_leaves_an_instance_and_comes_back_sizes_from_the_database(
    pair: list[ServiceProcess], feeds: ReplayingFeeds, redis: Any
) -> None:
    # Arrange: a leased (client-mode) leader, run by one of the two instances.
    api = Api(pair[0].http)
    leader = await api.leader("leased", {"kind": "generic", "url": feeds.url("G")})
    follower, subscription_id = await follow(api, leader)
    want = []
    for fill_id, _, _, before, legs in LEASE_SCRIPT:
        want += expected(leader["id"], subscription_id, fill_id, before, legs)
    frames = {f: fill_frame(f, SYMBOL, side, qty, PRICE) for f, side, qty, _, _ in LEASE_SCRIPT}
    owner = await eventually(
        lambda: owner_of(pair[0], leader["id"]), "an instance taking the leader", 30, every_s=0.1
    )
    first = next(s for s in pair if pid(s) == owner)
    second = next(s for s in pair if s is not first)

    # Act: g-1 on the first owner; it freezes (a long pause, a VM stall) past its lease, the
    # second takes the leader over and records g-2; the first wakes and gives the leader up;
    # then the second freezes, and the leader comes back to the first for g-3 and g-4.
    await feeds.publish("G", frames["g-1"])
    assert len(await wait_stream(redis, follower["id"], 1)) == 1
    os.kill(int(pid(first)), signal.SIGSTOP)
    try:
        await wait_owner(second, leader["id"], pid(second))
        await feeds.publish("G", frames["g-2"])
        assert len(await wait_stream(redis, follower["id"], 2)) == 2
    finally:
        os.kill(int(pid(first)), signal.SIGCONT)
    await wait_owner(first, leader["id"], None)
    os.kill(int(pid(second)), signal.SIGSTOP)
    try:
        await wait_owner(first, leader["id"], pid(first))
        await feeds.publish("G", frames["g-3"])
        await feeds.publish("G", frames["g-4"])
        stream = await wait_stream(redis, follower["id"], len(want))
    finally:
        os.kill(int(pid(second)), signal.SIGCONT)

    # Assert
    assert await got(api, stream) == want
    orders = await api.settled_orders(follower["id"], timeout_s=30)
    assert sorted(o["order_id"] for o in orders) == sorted(o[0] for o in want)
