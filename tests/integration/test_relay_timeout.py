"""The outbox relay never keeps fills locked longer than its timeout while Redis hangs."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlparse

from redis.asyncio import Redis

from app.dispatch.enqueue import Enqueuer
from app.dispatch.relay import OutboxRelay
from app.runtime import Runtime
from tests.conftest import TEST_REDIS_URL
from tests.integration.runtimes import fill, seed
from tests.integration.test_outbox_relay import cut_off  # noqa: F401 (a fixture)
from tests.venues.harness import FreezingProxy


async def test_a_hanging_redis_costs_the_relay_its_batch_not_the_locks(
    cut_off: Runtime,  # noqa: F811
    db: Any,
) -> None:
    # Arrange: a committed fill whose orders never reached Redis, and a Redis that accepts
    # connections but answers nothing (no client-side socket timeout to save the relay).
    leader_id, _ = await seed(cut_off, followers=2)
    await cut_off.pipeline.handle_fill(fill(leader_id, "f-1"))
    target = urlparse(TEST_REDIS_URL)
    proxy = FreezingProxy(target.port or 6379)
    await proxy.start()
    proxy.freeze()
    hanging = Redis(host="127.0.0.1", port=proxy.port, db=int(target.path.strip("/") or 0))
    relay = OutboxRelay(cut_off.sessionmaker, Enqueuer(hanging, 3600), 1.0, 0.0, timeout_s=0.5)
    relaying: asyncio.Task[int] | None = None
    try:
        # Act
        relaying = asyncio.create_task(relay.relay_once(0.0))
        await asyncio.wait({relaying}, timeout=30)  # a guard only: it ends far sooner
        assert relaying.done(), "the relay kept its batch locked with no time limit"
        # Assert: the relay gave the batch up, and nothing holds the fill any more.
        async with db.transaction():
            locked = await db.fetch("SELECT id FROM leader_fill FOR UPDATE NOWAIT")
        pending = await db.fetchval("SELECT count(*) FROM leader_fill WHERE dispatched_at IS NULL")
    finally:
        if relaying is not None:
            relaying.cancel()
            await asyncio.gather(relaying, return_exceptions=True)
        proxy.thaw()
        await hanging.aclose()
        await proxy.close()
    assert relaying is not None
    assert isinstance(relaying.exception(), TimeoutError)
    assert len(locked) == 1
    assert pending == 1
