"""Listener leases in Postgres: pause and resume over the API, fair shares between
instances, and no leader ever owned twice, whatever order the instances claim in."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import asyncpg
import pytest

from app.runtime import Runtime
from tests.conftest import make_settings
from tests.support import Api, LiveServer

UNREACHABLE_FEED = "ws://127.0.0.1:1/feed"


async def test_pausing_a_leader_stops_its_listener_and_resuming_starts_it(
    server: LiveServer, db: asyncpg.Connection
) -> None:
    # Arrange
    api = Api(server.http)
    leader = await api.leader("generic", {"kind": "generic", "url": UNREACHABLE_FEED})
    running = (await api.call("GET", "/readyz", 200))["listeners"]

    # Act
    paused = await api.call("PATCH", f"/v1/leaders/{leader['id']}", 200, json={"status": "paused"})
    while_paused = (await api.call("GET", "/readyz", 200))["listeners"]
    lease_paused = await db.fetchval(
        "SELECT count(*) FROM feed_lease WHERE leader_id = $1 AND expires_at > now()",
        leader["id"],
    )
    resumed = await api.call("PATCH", f"/v1/leaders/{leader['id']}", 200, json={"status": "active"})
    after = (await api.call("GET", "/readyz", 200))["listeners"]
    fetched = await api.call("GET", f"/v1/leaders/{leader['id']}", 200)

    # Assert
    assert list(running) == [leader["id"]]
    assert paused["status"] == "paused"
    assert while_paused == {}
    assert lease_paused == 0
    assert resumed["status"] == "active"
    assert fetched["listener"]["state"] in {"starting", "connecting"}
    assert list(after) == [leader["id"]]


async def test_patch_leader_validates_status(server: LiveServer) -> None:
    # Arrange
    api = Api(server.http)
    leader = await api.leader()

    # Act
    error = await api.call("PATCH", f"/v1/leaders/{leader['id']}", 422, json={"status": "sleeping"})

    # Assert
    assert error["detail"][0]["loc"] == ["body", "status"]


@pytest.fixture
async def instances(clean: None) -> AsyncIterator[list[Runtime]]:
    runtimes = [Runtime(make_settings(lease_ttl_s=5.0, lease_heartbeat_s=1.0)) for _ in range(3)]
    for runtime in runtimes:
        await runtime.open()
    yield runtimes
    for runtime in runtimes:
        await runtime.stop()


async def test_instances_share_leaders_fairly_and_never_own_one_twice(
    server: LiveServer, instances: list[Runtime], db: asyncpg.Connection
) -> None:
    # Arrange: seven leaders, three instances reconciling at the same time, several rounds.
    api = Api(server.http)
    await server.runtime.listeners.stop_all()  # the server's own instance stays out
    for n in range(7):
        await api.leader(f"L{n}", {"kind": "generic", "url": UNREACHABLE_FEED})
    await server.runtime.listeners.stop_all()

    # Act
    for _ in range(4):
        await asyncio.gather(*(runtime.listeners.reconcile() for runtime in instances))

    # Assert: each leader has one owner, in the table and in memory; shares are 3/2/2 at most.
    owners = dict(
        await db.fetch("SELECT leader_id, owner FROM feed_lease WHERE expires_at > now()")
    )
    running = [set(runtime.listeners.listeners) for runtime in instances]
    assert len(owners) == 7
    assert sum(len(r) for r in running) == 7
    assert set().union(*running) == set(owners)
    for runtime, leaders in zip(instances, running, strict=True):
        assert {owners[leader] for leader in leaders} <= {runtime.listeners.me}
        assert len(leaders) <= 3


async def test_a_stopped_instance_hands_its_leaders_over_at_once(
    server: LiveServer, instances: list[Runtime]
) -> None:
    # Arrange
    api = Api(server.http)
    for n in range(4):
        await api.leader(f"L{n}", {"kind": "generic", "url": UNREACHABLE_FEED})
    await server.runtime.listeners.stop_all()
    first, second, _ = instances
    await first.listeners.reconcile()
    taken = set(first.listeners.listeners)

    # Act: a clean stop releases the leases; the other instance takes them without waiting.
    await first.listeners.stop_all()
    await second.listeners.reconcile()

    # Assert
    assert taken
    assert taken <= set(second.listeners.listeners)


async def test_a_leader_whose_credentials_cannot_be_read_is_reported_not_run(
    server: LiveServer, db: asyncpg.Connection
) -> None:
    # Arrange: a venue leader whose stored credentials no configured key opens (a rotated-out
    # key, a copy from another deployment).
    leader_id = await db.fetchval(
        "INSERT INTO leader (id, name, feed_kind, feed_config, feed_secret) "
        "VALUES (gen_random_uuid(), 'unreadable', 'binance-usdm', $1::jsonb, "
        "'not-a-fernet-token') RETURNING id",
        json.dumps({"rest_url": "http://127.0.0.1:9/", "ws_url": "ws://127.0.0.1:9/"}),
    )
    api = Api(server.http)

    # Act
    await server.runtime.listeners.refresh()
    ready = await server.http.get("/readyz")
    leader = await api.call("GET", f"/v1/leaders/{leader_id}", 200)

    # Assert: reported with the reason, not running, and the instance stays ready.
    assert ready.status_code == 200
    state = ready.json()["listeners"][str(leader_id)]
    assert state["state"] == "error"
    assert state["alive"] is False
    assert "credentials" in state["last_error"].lower() or "key" in state["last_error"].lower()
    assert leader["listener"]["state"] == "error"
    assert server.runtime.listeners.listeners == {}
