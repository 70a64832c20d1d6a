"""Graceful shutdown of the real service process: SIGTERM mid-burst, exit 0 within the grace
period, restart, finish the burst; every fill recorded once, every order in its stream once.
"""

from __future__ import annotations

import asyncio
import json
import signal
from typing import Any

import asyncpg
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.e2e.conftest import ServiceProcess, log_path_for
from tests.e2e.faults import (
    ResendingLeader,
    expected_orders,
    stream_order_ids,
    wait_for_orders,
)
from tests.e2e.test_faults import assert_exactly, seed
from tests.support import Api, LiveServer, bearer, eventually, fill_frame

GRACE_S = 10
FILLS = 400
SIGTERM_AFTER = (80, 200)  # acknowledged fills before each SIGTERM


async def sigterm(service: ServiceProcess) -> int:
    """SIGTERM; return the exit status, failing if the process outlives the grace period."""
    process = service.process
    assert process is not None
    assert process.returncode is None
    process.send_signal(signal.SIGTERM)
    try:
        return await asyncio.wait_for(process.wait(), timeout=GRACE_S)
    except TimeoutError:
        await service.kill()
        pytest.fail(f"still running {GRACE_S} s after SIGTERM")


def log_events(service: ServiceProcess) -> list[dict[str, Any]]:
    events = []
    for line in service.log_path.read_text().splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    return events


async def test_sigterm_mid_burst_drains_exits_zero_and_loses_nothing(
    clean: None, request: pytest.FixtureRequest, redis: Any, db: asyncpg.Connection
) -> None:
    # Arrange: a long dispatch timeout so that every acknowledged order was taken by Redis on
    # the hot path (none left to the relay), which makes "drained" checkable below.
    service = ServiceProcess(
        log_path_for(request),
        COPYTRADE_SHUTDOWN_GRACE_S=str(GRACE_S),
        COPYTRADE_DISPATCH_TIMEOUT_S="30",
    )
    try:
        await service.start()
        await service.wait_ready()
        accounts = await seed(service)
        fill_ids = ResendingLeader.fill_ids(FILLS)
        leader = ResendingLeader(service.ws_url, accounts.leader_id, accounts.push_token)
        driver = asyncio.create_task(leader.run(fill_ids))

        for threshold in SIGTERM_AFTER:
            # Act: SIGTERM while the leader is mid-burst.

            def reached(count: int = threshold) -> bool:
                return leader.sent >= count

            await eventually(reached, within_s=30)
            assert not driver.done()
            status = await sigterm(service)

            # Assert: a clean exit, and nothing left in flight. Every fill the leader sent was
            # either acknowledged or never taken: its orders are all in the streams already,
            # and no fill is left unmarked in the outbox (the dispatched marks were flushed).
            assert status == 0, service.log_path.read_text()[-3000:]
            acked = fill_ids[: leader.sent]
            must = expected_orders(accounts.leader_id, acked, accounts.subscriptions)
            present = await stream_order_ids(redis, accounts.followers)
            assert must <= present.keys(), "an acknowledged order is not in its stream"
            allowed = expected_orders(
                accounts.leader_id, fill_ids[: leader.sent + 1], accounts.subscriptions
            )
            assert present.keys() <= allowed
            pending = await db.fetchval(
                "SELECT count(*) FROM leader_fill WHERE dispatched_at IS NULL"
            )
            assert pending == 0, f"{pending} fills left for the relay"

            await service.start()

        await asyncio.wait_for(driver, timeout=60)

        # Assert the end state: every fill recorded once, every order in a stream once.
        assert leader.sent == FILLS
        # The frame in flight at each SIGTERM was finished and acknowledged before the socket
        # closed: no fill was committed without its ack, so none came back as a duplicate.
        assert leader.acks == {"accepted": FILLS}, leader.acks
        assert leader.reconnects >= len(SIGTERM_AFTER)
        recorded = await db.fetch(
            "SELECT fill_id, count(*) AS n FROM leader_fill WHERE leader_id = $1 GROUP BY 1",
            accounts.leader_id,
        )
        assert {r["fill_id"]: r["n"] for r in recorded} == dict.fromkeys(fill_ids, 1)
        expected = expected_orders(accounts.leader_id, fill_ids, accounts.subscriptions)
        assert_exactly(await wait_for_orders(redis, accounts.followers, expected), expected)

        events = [e["event"] for e in log_events(service)]
        assert events.count("shutdown_drained") == len(SIGTERM_AFTER)
        assert "shutdown_grace_exceeded" not in events
        assert events.count("runtime_stopped") == len(SIGTERM_AFTER)  # lifespan shutdown ran
        assert service.starts == len(SIGTERM_AFTER) + 1
    finally:
        await service.close()


async def test_sigterm_closes_an_idle_push_socket_with_1012(
    clean: None, request: pytest.FixtureRequest
) -> None:
    # Arrange: a push socket open on an idle leader (nothing in flight).
    service = ServiceProcess(log_path_for(request), COPYTRADE_SHUTDOWN_GRACE_S=str(GRACE_S))
    try:
        await service.start()
        await service.wait_ready()
        accounts = await seed(service, followers=1)
        url = f"{service.ws_url}/v1/leaders/{accounts.leader_id}/fills/ws"
        async with connect(url, additional_headers=bearer(accounts.push_token)) as ws:
            # The session registers just after the handshake.
            async def registered() -> dict[str, Any] | None:
                ready: dict[str, Any] = (await service.http.get("/readyz")).json()
                return ready if ready["push_feeds"] else None

            ready = await eventually(registered, "the push session in /readyz")
            assert ready["push_feeds"] == {accounts.leader_id: {"sockets": 1}}
            assert ready["draining"] is False

            # Act
            status = await sigterm(service)

            # Assert: the socket was closed with 1012 (service restart), and the exit is clean.
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), timeout=10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1012
        assert status == 0
    finally:
        await service.close()


async def test_while_draining_readyz_is_503_and_new_push_sockets_are_turned_away(
    server: LiveServer, db: asyncpg.Connection
) -> None:
    # Arrange
    api = Api(server.http)
    leader = await api.leader("leader")
    url = f"{server.ws_url}/v1/leaders/{leader['id']}/fills/ws"

    # Act: what the first SIGTERM does before anything else.
    server.runtime.drain.begin()

    # Assert
    ready = await server.http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["status"] == "draining"
    assert ready.json()["draining"] is True
    async with connect(url, additional_headers=bearer(leader["push_token"])) as ws:
        await ws.send(fill_frame("f-1", "BTCUSDT", "buy", "1", "50000"))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1012
    assert await db.fetchval("SELECT count(*) FROM leader_fill") == 0
