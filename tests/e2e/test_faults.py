"""Exactly once, whatever crashes: SIGKILL at random points, Redis and Postgres restarts,
replayed fills. Real service process, real Postgres and Redis, real websockets.

The invariant: the multiset of order ids in the followers' streams equals exactly the orders
of the fills the leader got acknowledged: none missing, none twice.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from redis.asyncio import Redis
from websockets.asyncio.server import ServerConnection, serve

from tests.conftest import TEST_DATABASE_URL
from tests.e2e.conftest import ServiceProcess, free_port, log_path_for
from tests.e2e.faults import (
    ResendingLeader,
    TcpCutter,
    expected_orders,
    wait_for_orders,
)
from tests.support import Api, eventually, fill_frame

KILLS = int(os.environ.get("COPYTRADE_SOAK_KILLS", "20"))


async def advanced(leader: ResendingLeader, fills: int) -> None:
    """Wait until ``fills`` more of the leader's fills have been acknowledged."""
    target = leader.sent + fills
    await eventually(lambda: leader.sent >= target, f"{fills} more fills acknowledged", 30)


async def reconnected(leader: ResendingLeader, times: int) -> None:
    """Wait until the leader has had to reconnect ``times`` more times."""
    target = leader.reconnects + times
    await eventually(lambda: leader.reconnects >= target, f"{times} more reconnects", 30)


async def logged_after(service: ServiceProcess, event: str, seen: int) -> None:
    """Wait until the service has logged ``event`` more than the ``seen`` times."""
    await eventually(lambda: service.logged(event) > seen, f"{event} logged", 30)


@dataclass
class Accounts:
    leader_id: str
    push_token: str
    followers: list[str]
    subscriptions: list[str]


async def seed(service: ServiceProcess, followers: int = 3) -> Accounts:
    api = Api(service.http)
    leader = await api.leader("leader")
    await api.leader_equity(leader["id"], "100000")
    follower_ids, sub_ids = [], []
    for n in range(followers):
        follower = await api.follower(f"f{n}")
        await api.follower_equity(follower["id"], str(10000 * (n + 1)))
        sub = await api.subscribe(follower["id"], leader["id"])
        follower_ids.append(follower["id"])
        sub_ids.append(sub["id"])
    return Accounts(leader["id"], leader["push_token"], follower_ids, sub_ids)


def assert_exactly(present: Any, expected: set[str]) -> None:
    doubled = {oid: n for oid, n in present.items() if n > 1}
    missing = expected - present.keys()
    extra = present.keys() - expected
    assert not doubled, f"orders in a stream twice: {doubled}"
    assert not missing, f"{len(missing)} acknowledged orders missing"
    assert not extra, f"{len(extra)} orders nobody expected"


# Twenty service start-ups in one test: the suite's 120 s hang guard is too close to its
# length on a loaded 2-core machine.
@pytest.mark.timeout(600)
async def test_sigkill_at_random_points_neither_loses_nor_doubles(
    service: ServiceProcess, redis: Any
) -> None:
    # Arrange
    accounts = await seed(service)
    fill_ids = ResendingLeader.fill_ids(100_000)
    leader = ResendingLeader(service.ws_url, accounts.leader_id, accounts.push_token)
    driver = asyncio.create_task(leader.run(fill_ids))
    rng = random.Random(os.environ.get("COPYTRADE_SOAK_SEED"))

    # Act / Assert after every restart
    for _ in range(KILLS):
        # Kill after a random number of acknowledged fills (at a random point of the next).
        await advanced(leader, rng.randint(1, 25))
        await service.kill()
        acked = fill_ids[: leader.sent]
        await service.start()
        must = expected_orders(accounts.leader_id, acked, accounts.subscriptions)
        present = await wait_for_orders(redis, accounts.followers, must)
        # The fill in flight at the kill may or may not have been committed.
        allowed = expected_orders(
            accounts.leader_id, fill_ids[: leader.sent + 1], accounts.subscriptions
        )
        assert not {k for k, n in present.items() if n > 1}, "an order was enqueued twice"
        assert must <= present.keys(), "an acknowledged fill's order is missing"
        assert present.keys() <= allowed, "an order for a fill never sent"
    leader.stop.set()
    await asyncio.wait_for(driver, timeout=30)

    # Assert the end state
    acked = fill_ids[: leader.sent]
    assert len(acked) > KILLS, "the burst was too short to mean anything"
    expected = expected_orders(accounts.leader_id, acked, accounts.subscriptions)
    present = await wait_for_orders(redis, accounts.followers, expected)
    assert_exactly(present, expected)
    assert service.starts == KILLS + 1


async def test_replayed_and_shuffled_fills_give_one_order_each(
    service: ServiceProcess, redis: Any
) -> None:
    # Arrange: every fill 1 to 3 times, shuffled, over several connections.
    accounts = await seed(service, followers=2)
    rng = random.Random(7)
    fill_ids = ResendingLeader.fill_ids(60)
    frames = [f for f in fill_ids for _ in range(rng.randint(1, 3))]
    rng.shuffle(frames)
    chunks = [frames[i : i + 25] for i in range(0, len(frames), 25)]

    # Act
    statuses: list[str] = []
    for chunk in chunks:
        leader = ResendingLeader(service.ws_url, accounts.leader_id, accounts.push_token)
        await leader.run(chunk)
        statuses += list(leader.acks.elements())

    # Assert
    expected = expected_orders(accounts.leader_id, fill_ids, accounts.subscriptions)
    assert_exactly(await wait_for_orders(redis, accounts.followers, expected), expected)
    assert statuses.count("accepted") == len(fill_ids)
    assert statuses.count("duplicate") == len(frames) - len(fill_ids)


@pytest.fixture
def private_redis(tmp_path: Path) -> tuple[str, Path, int]:
    """A redis-server of our own, with an fsync-always AOF, that the test may kill."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is required for this test (apt-get install redis-server)")
    # The test kills the server itself when it is done with it.
    return binary, tmp_path, free_port()


async def start_redis(binary: str, workdir: Path, port: int) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
        "--appendonly", "yes", "--appendfsync", "always", "--save", "",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    client = Redis(port=port)

    async def answers() -> bool:
        try:
            return bool(await client.ping())
        except Exception:
            return False

    try:
        await eventually(answers, "the private redis-server answering PING")
    finally:
        await client.aclose()
    return process


async def test_redis_restart_mid_burst(
    clean: None, request: pytest.FixtureRequest, private_redis: tuple[str, Path, int]
) -> None:
    # Arrange: the service on a Redis we can kill -9 (AOF, fsync always: what a production
    # Redis holding order streams should run with).
    binary, workdir, port = private_redis
    redis_process = await start_redis(binary, workdir, port)
    service = ServiceProcess(
        log_path_for(request), COPYTRADE_REDIS_URL=f"redis://127.0.0.1:{port}/0"
    )
    redis = Redis(port=port, decode_responses=True)
    try:
        await service.start()
        await service.wait_ready()
        accounts = await seed(service)
        fill_ids = ResendingLeader.fill_ids(100_000)
        leader = ResendingLeader(service.ws_url, accounts.leader_id, accounts.push_token)
        driver = asyncio.create_task(leader.run(fill_ids))

        # Act: kill Redis mid-burst; fills keep being accepted into the outbox meanwhile.
        for _ in range(3):
            await advanced(leader, 20)
            redis_process.send_signal(signal.SIGKILL)
            await redis_process.wait()
            sent_before = leader.sent
            ready = await service.http.get("/readyz")
            await advanced(leader, 1)  # fills are accepted while Redis is down
            assert ready.status_code == 503
            redis_process = await start_redis(binary, workdir, port)
            assert leader.sent > sent_before, "fills stopped while Redis was down"
        await advanced(leader, 20)
        leader.stop.set()
        await asyncio.wait_for(driver, timeout=30)

        # Assert
        expected = expected_orders(
            accounts.leader_id, fill_ids[: leader.sent], accounts.subscriptions
        )
        present = await wait_for_orders(redis, accounts.followers, expected, timeout_s=20)
        assert_exactly(present, expected)
    finally:
        await redis.aclose()
        await service.close()
        redis_process.send_signal(signal.SIGKILL)
        await redis_process.wait()


async def service_behind_cutter(
    request: pytest.FixtureRequest,
) -> tuple[TcpCutter, ServiceProcess]:
    """A service (not started) whose Postgres connections go through a cuttable proxy."""
    target = urlparse(TEST_DATABASE_URL.replace("postgresql+asyncpg", "postgresql"))
    cutter = TcpCutter(target.hostname or "127.0.0.1", target.port or 5432)
    await cutter.start()
    proxied = TEST_DATABASE_URL.replace(f":{target.port or 5432}/", f":{cutter.port}/")
    return cutter, ServiceProcess(log_path_for(request), COPYTRADE_DATABASE_URL=proxied)


async def test_postgres_restart_mid_burst(
    clean: None, request: pytest.FixtureRequest, redis: Any
) -> None:
    # Arrange: the service reaches Postgres through a proxy that the test can cut, which is
    # what a Postgres restart looks like from the service (connections drop, then refused).
    cutter, service = await service_behind_cutter(request)
    try:
        await service.start()
        await service.wait_ready()
        accounts = await seed(service)
        fill_ids = ResendingLeader.fill_ids(100_000)
        leader = ResendingLeader(service.ws_url, accounts.leader_id, accounts.push_token)
        driver = asyncio.create_task(leader.run(fill_ids))

        # Act: Postgres goes away twice mid-burst; nothing may be acknowledged meanwhile. The
        # fill in flight at the cut is refused (a retry frame or a closed socket: the leader
        # reconnects), and so are the leader's next attempts: only then is the count of
        # acknowledged fills read and held to.
        for _ in range(2):
            await advanced(leader, 20)
            await cutter.cut()
            await reconnected(leader, 1)
            acked_during_cut = leader.sent
            await reconnected(leader, 3)
            assert leader.sent == acked_during_cut, "a fill was acknowledged without Postgres"
            await cutter.restore()
        await eventually(lambda: leader.sent > acked_during_cut, "fills resumed", 30)
        assert leader.sent > acked_during_cut, "fills did not resume after Postgres returned"
        leader.stop.set()
        await asyncio.wait_for(driver, timeout=30)

        # Assert
        expected = expected_orders(
            accounts.leader_id, fill_ids[: leader.sent], accounts.subscriptions
        )
        present = await wait_for_orders(redis, accounts.followers, expected)
        assert_exactly(present, expected)
    finally:
        await service.close()
        await cutter.close()


async def test_generic_feed_pauses_while_postgres_is_away_and_loses_no_fill(
    clean: None, request: pytest.FixtureRequest, redis: Any
) -> None:
    # Arrange: a generic-mode leader feed (no acks to withhold) and a Postgres we can cut.
    cutter, service = await service_behind_cutter(request)
    connections: asyncio.Queue[ServerConnection] = asyncio.Queue()

    async def upstream(ws: ServerConnection) -> None:
        await connections.put(ws)
        await ws.wait_closed()

    try:
        async with serve(upstream, "127.0.0.1", 0) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            await service.start()
            await service.wait_ready()
            api = Api(service.http)
            leader = await api.leader(
                "generic", {"kind": "generic", "url": f"ws://127.0.0.1:{port}"}
            )
            await api.leader_equity(leader["id"], "100000")
            follower = await api.follower("f")
            await api.follower_equity(follower["id"], "10000")
            sub = await api.subscribe(follower["id"], leader["id"])
            feed = await asyncio.wait_for(connections.get(), timeout=10)
            fill_ids = [f"g-{n}" for n in range(30)]

            # Act: ten fills, Postgres goes away, ten more, Postgres comes back, ten more.
            for fill_id in fill_ids[:10]:
                await feed.send(fill_frame(fill_id, "BTCUSDT", "buy", "1", "50000"))
            first = expected_orders(leader["id"], fill_ids[:10], [sub["id"]])
            await wait_for_orders(redis, [follower["id"]], first)
            paused = service.logged("feed_paused")
            await cutter.cut()
            for fill_id in fill_ids[10:20]:
                await feed.send(fill_frame(fill_id, "BTCUSDT", "buy", "1", "50000"))
            # The feed has met the missing database before it comes back.
            await logged_after(service, "feed_paused", paused)
            await cutter.restore()
            for fill_id in fill_ids[20:]:
                await feed.send(fill_frame(fill_id, "BTCUSDT", "buy", "1", "50000"))

            # Assert
            expected = expected_orders(leader["id"], fill_ids, [sub["id"]])
            present = await wait_for_orders(redis, [follower["id"]], expected, timeout_s=20)
            assert_exactly(present, expected)
    finally:
        await service.close()
        await cutter.close()
