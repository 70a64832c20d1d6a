"""Exchange credentials stay secret: a Bybit leader run by the real service process against a
loopback Bybit; the credentials are never in any API response (not even the creation's), in
the database as plaintext, or in the service's log, while the feed works."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from app.security.crypto import generate_key
from tests.e2e.conftest import ServiceProcess, log_path_for
from tests.support import ADMIN, Api, eventually, read_stream
from tests.venues.fake_bybit import FakeBybit, execution
from tests.venues.harness import run_venue

SECRET = "Zq8" + "s" * 30 + "Venue!"
KEY = "Kk4" + "k" * 20 + "ApiKey"


async def test_venue_credentials_never_leave_the_service(
    clean: None, redis: Redis, db: asyncpg.Connection, request: pytest.FixtureRequest
) -> None:
    # Arrange: the real process, with a credentials key and quick heartbeats.
    service = ServiceProcess(
        log_path_for(request),
        COPYTRADE_CREDENTIALS_KEY=generate_key(),
        COPYTRADE_LEASE_HEARTBEAT_S="0.3",
        COPYTRADE_LEASE_TTL_S="1.0",
        COPYTRADE_LOG_LEVEL="debug",
    )
    venue = FakeBybit(api_key=KEY, api_secret=SECRET)
    seen: list[str] = []
    try:
        async with run_venue(venue) as running:
            await service.start()
            await service.wait_ready()
            api = Api(service.http)
            follower = await api.follower()
            await api.follower_equity(follower["id"], "10000")
            await api.instrument("BTCUSDT", qty_step="0.001", min_qty="0.001")

            # Act: create, read back, list, readiness; then a live fill.
            created = await api.leader(
                "bybit",
                {
                    "kind": "bybit",
                    "api_key": KEY,
                    "api_secret": SECRET,
                    "rest_url": running.rest_url,
                    "ws_url": f"{running.ws_base}{venue.ws_path}",
                },
            )
            await api.subscribe(follower["id"], created["id"])
            await venue.wait_subscribed(30)
            await venue.trade(execution("BTCUSDT", "Buy", "0.5", "50000"))

            async def an_order() -> list[dict[str, Any]]:
                return await read_stream(redis, follower["id"])

            orders: list[dict[str, Any]] = await eventually(an_order, "the trade's order", 15)
            for path in ("/v1/leaders", f"/v1/leaders/{created['id']}", "/readyz"):
                seen.append((await service.http.get(path, headers=ADMIN)).text)
            stored = await db.fetchval(
                "SELECT feed_secret FROM leader WHERE id = $1", created["id"]
            )
            await service.stop()  # flush the log while the venue still answers
    finally:
        await service.close()

    # Assert: the feed worked, authenticated with the credentials...
    assert [(o["side"], o["qty"]) for o in orders] == [("buy", "0.05")]
    assert venue.auth_failures == 0
    # ...which appear nowhere: responses, the stored row, the log.
    texts = [json.dumps(created), *seen]
    assert [t[:80] for t in texts if KEY in t or SECRET in t] == []
    assert stored is not None
    assert KEY not in stored
    assert SECRET not in stored
    log = service.log_path.read_text()
    assert "venue_connected" in log  # the log saw the session, at debug level
    assert KEY not in log
    assert SECRET not in log
