"""Two execute instances share the follower accounts; one is SIGKILLed mid-burst and the other
takes its accounts over when their leases run out. Every order reaches the loopback Binance
USD-M venue exactly once (it counts the orders it makes per client id)."""

from __future__ import annotations

import asyncio
from uuid import UUID

import asyncpg
import pytest

from app.domain.ids import order_id
from app.security.crypto import generate_key
from tests.conftest import pg_dsn
from tests.e2e.test_execution_faults import (
    connect_account,
    execute_process,
    main_process,
    send_fills,
)
from tests.support import Api, eventually, push_socket
from tests.venues.binance_usdm_trading import FakeBinanceTrading
from tests.venues.harness import run_venue

ACCOUNTS = 6
FILLS = 40


async def owners() -> list[str | None]:
    conn = await asyncpg.connect(pg_dsn())
    try:
        rows = await conn.fetch("SELECT owner FROM follower_account ORDER BY follower_id")
    finally:
        await conn.close()
    return [row["owner"] for row in rows]


@pytest.mark.timeout(600)
async def test_a_killed_instances_accounts_are_taken_over_with_no_order_lost_or_doubled(
    clean: None, request: pytest.FixtureRequest
) -> None:
    # Arrange: the api/ingest/dispatch process and two execute-only ones, the accounts
    # spread over both.
    key = generate_key()
    venue = FakeBinanceTrading()
    main = main_process(request, key)
    executors = [execute_process(request, key, name) for name in ("a", "b")]
    killed = executors[0]
    async with run_venue(venue) as running:
        try:
            await main.start()
            await main.wait_ready()
            for executor in executors:
                await executor.start()
            api = Api(main.http)
            await api.instrument("BTCUSDT", qty_step="0.001", min_qty="0.001")
            leader = await api.leader()
            await api.leader_equity(leader["id"], "100000")
            subscriptions = []
            for n in range(ACCOUNTS):
                follower = await api.follower(f"follower-{n}")
                subscriptions.append(await api.subscribe(follower["id"], leader["id"]))
                await connect_account(api, follower["id"], venue, running)

            async def shared() -> bool:
                held = await owners()
                return None not in held and len(set(held)) == 2

            await eventually(shared, "the accounts spread over both instances", within_s=60)
            assert killed.process is not None
            # An owner is "exec:<host>:<pid>:<suffix>".
            (killed_owner,) = {
                o for o in await owners() if o and o.split(":")[2] == str(killed.process.pid)
            }

            # Act: a burst of fills; one executor killed once it has placed some, not restarted
            sent: list[str] = []
            async with push_socket(main.ws_url, leader["id"], leader["push_token"]) as ws:
                burst = asyncio.create_task(send_fills(ws, FILLS, sent))
                await eventually(
                    lambda: sum(venue.placements.values()) >= ACCOUNTS * 4,
                    "orders placed",
                    within_s=30,
                )
                await killed.kill()
                await burst

            # Assert: the survivor holds every account, and every order of every fill reached
            # the venue exactly once.
            async def taken_over() -> bool:
                held = await owners()
                return len(set(held)) == 1 and killed_owner not in held

            await eventually(taken_over, "the killed instance's accounts taken over", within_s=60)
            expected = {
                order_id(UUID(leader["id"]), f, UUID(sub["id"]))
                for f in sent
                for sub in subscriptions
            }
            await eventually(
                lambda: expected <= venue.placements.keys(), "every order placed", within_s=60
            )
            doubled = {cid: n for cid, n in venue.placements.items() if n > 1}
            assert not doubled, f"placed more than once: {doubled}"
            assert venue.placements.keys() == expected
        finally:
            for executor in executors:
                await executor.close()
            await main.close()
