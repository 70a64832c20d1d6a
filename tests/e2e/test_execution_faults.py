"""Exactly once at the venue, whatever kills the executor: an execute-only service process
SIGKILLed again and again mid-burst, beside a process with the other roles, against the
loopback Binance USD-M trading account that counts every order it makes per client id.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
from typing import Any
from uuid import UUID

import pytest
from websockets.asyncio.client import ClientConnection

from app.domain.ids import order_id
from app.security.crypto import generate_key
from tests.e2e.conftest import ServiceProcess, log_path_for
from tests.support import Api, eventually, fill_frame, push_socket
from tests.venues.binance_usdm_trading import FakeBinanceTrading
from tests.venues.harness import Running, run_venue

KILLS = int(os.environ.get("COPYTRADE_EXEC_KILLS", "12"))
FILLS = 160
TIMINGS = {
    "COPYTRADE_LEASE_TTL_S": "1.0",
    "COPYTRADE_LEASE_HEARTBEAT_S": "0.3",
    "COPYTRADE_EXEC_CLAIM_IDLE_MS": "500",
    "COPYTRADE_ACCOUNT_EQUITY_INTERVAL_S": "0.5",
    "COPYTRADE_ORDER_TTL_S": "300",
}


async def send_fills(ws: ClientConnection, count: int, sent: list[str]) -> None:
    """Fills in order, each acknowledged before the next: buy then sell, so the follower's
    position goes 0.1 and back (every sell a reduce-only close)."""
    for n in range(count):
        fill_id = f"f-{n:04d}"
        side = "buy" if n % 2 == 0 else "sell"
        await ws.send(fill_frame(fill_id, "BTCUSDT", side, "1", "50000"))
        reply = json.loads(await asyncio.wait_for(ws.recv(), timeout=20))
        assert reply["type"] == "ack", reply
        sent.append(fill_id)


@pytest.mark.timeout(600)
async def test_sigkill_of_the_executor_never_places_an_order_twice_nor_drops_one(
    clean: None, request: pytest.FixtureRequest
) -> None:
    # Arrange: the api/ingest/dispatch process, and an execute-only one to kill
    key = generate_key()
    venue = FakeBinanceTrading()
    main = main_process(request, key)
    executor = execute_process(request, key, "executor")
    executor_log = executor.log_path
    rng = random.Random(os.environ.get("COPYTRADE_SOAK_SEED"))
    async with run_venue(venue) as running:
        try:
            await main.start()
            await main.wait_ready()
            await executor.start()
            api = Api(main.http)
            await api.instrument("BTCUSDT", qty_step="0.001", min_qty="0.001")
            leader = await api.leader()
            await api.leader_equity(leader["id"], "100000")
            follower = await api.follower()
            sub = await api.subscribe(follower["id"], leader["id"])
            await connect_account(api, follower["id"], venue, running)

            # Act: a burst of fills, the executor killed at random points during it
            sent: list[str] = []
            async with push_socket(main.ws_url, leader["id"], leader["push_token"]) as ws:
                burst = asyncio.create_task(send_fills(ws, FILLS, sent))
                for _ in range(KILLS):
                    # Kill only once the executor has placed something since its start.
                    placed = sum(venue.placements.values())

                    def placed_more(before: int = placed) -> bool:
                        return sum(venue.placements.values()) > before

                    await eventually(
                        placed_more, "a placement since the executor started", within_s=30
                    )
                    await asyncio.sleep(rng.uniform(0.0, 0.15))
                    await executor.kill()
                    await executor.start()
                await burst

            # Assert: every order of every fill reached the venue, each exactly once
            expected = {order_id(UUID(leader["id"]), f, UUID(sub["id"])) for f in sent}
            await eventually(
                lambda: expected <= venue.placements.keys(), "every order placed", within_s=60
            )
            doubled = {cid: n for cid, n in venue.placements.items() if n > 1}
            assert not doubled, f"placed more than once: {doubled}"
            assert venue.placements.keys() == expected
            assert executor.starts == KILLS + 1
            assert venue.positions.get("BTCUSDT", 0) == 0
            for log in (main.log_path, executor_log):
                text = log.read_text()
                assert venue.api_secret not in text
                assert venue.api_key not in text
        finally:
            await executor.close()
            await main.close()


def main_process(request: pytest.FixtureRequest, key: str) -> ServiceProcess:
    """The service process with every role but execute."""
    return ServiceProcess(
        log_path_for(request),
        COPYTRADE_ROLES="api,ingest,dispatch",
        COPYTRADE_CREDENTIALS_KEY=key,
        **TIMINGS,
    )


def execute_process(request: pytest.FixtureRequest, key: str, name: str) -> ServiceProcess:
    """An execute-only service process, logging to its own file."""
    log = log_path_for(request).with_suffix(f".{name}.log")
    log.unlink(missing_ok=True)
    return ServiceProcess(log, COPYTRADE_ROLES="execute", COPYTRADE_CREDENTIALS_KEY=key, **TIMINGS)


async def connect_account(
    api: Api, follower_id: str, venue: FakeBinanceTrading, running: Running
) -> None:
    """Connect the follower to the fake venue's account and wait until it is ready."""
    path = f"/v1/followers/{follower_id}/account"
    body: dict[str, Any] = {
        "kind": "binance-usdm",
        "api_key": venue.api_key,
        "api_secret": venue.api_secret,
        "rest_url": running.rest_url,
        "ws_url": running.ws_base,
    }
    await api.call("PUT", path, 200, json=body)
    await until_ready(api, path)


async def until_ready(api: Api, path: str) -> None:
    async def ready() -> bool:
        return bool((await api.call("GET", path, 200))["status"] == "ready")

    await eventually(ready, "the account ready", within_s=30)
