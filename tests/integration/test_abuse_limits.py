"""A flood of made-up credentials from one address is limited before any lookup, in Redis
(shared by every instance), while an honest key from the same address still works."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from app.metrics import AUTH_LOOKUPS
from tests.conftest import make_settings
from tests.support import Api, LiveServer, bearer, start_live_server

BURST = 20
# Fifty times the burst: all but the burst's first calls must be limited without a lookup.
FLOOD = 1000


@pytest.fixture
async def two_instances(clean: None) -> AsyncIterator[tuple[LiveServer, LiveServer]]:
    settings = make_settings(unauth_rate_limit=f"{BURST}/hour")
    async with start_live_server(settings) as one, start_live_server(settings) as two:
        yield one, two


async def test_random_tokens_are_limited_per_address_before_any_lookup(
    two_instances: tuple[LiveServer, LiveServer],
) -> None:
    # Arrange: an honest follower that has used its key once; two instances on one Redis.
    one, two = two_instances
    follower = await Api(one.http).follower()
    honest = bearer(follower["api_key"])
    path = f"/v1/followers/{follower['id']}"
    assert (await one.http.get(path, headers=honest)).status_code == 200
    lookups_before = AUTH_LOOKUPS._value.get()

    async def flood(server: LiveServer, count: int) -> Counter[int]:
        statuses: Counter[int] = Counter()
        for _ in range(count):
            token = "ctf_" + secrets.token_urlsafe(32)
            statuses[(await server.http.get(path, headers=bearer(token))).status_code] += 1
        return statuses

    async def honest_calls() -> list[int]:
        seen = []
        for _ in range(50):
            seen.append((await one.http.get(path, headers=honest)).status_code)
            await asyncio.sleep(0)
        return seen

    # Act: the flood is split over both instances, the honest key calls meanwhile.
    first, second, honest_statuses = await asyncio.gather(
        flood(one, FLOOD // 2), flood(two, FLOOD // 2), honest_calls()
    )

    # Assert: one budget for the address across both instances (the honest key's first call,
    # before it was known good, took one of it), then 429 without lookups.
    statuses = first + second
    assert statuses[401] == BURST - 1
    assert statuses[429] == FLOOD - (BURST - 1)
    flood_lookups = AUTH_LOOKUPS._value.get() - lookups_before - len(honest_statuses)
    assert flood_lookups == BURST - 1
    assert honest_statuses == [200] * 50


async def test_a_credential_has_one_budget_across_instances(clean: None) -> None:
    # Arrange: two instances on one Redis; a key may make 3 requests per 3,000 s.
    settings = make_settings(rate_limit_per_s=0.001, rate_limit_burst=3)
    async with start_live_server(settings) as one, start_live_server(settings) as two:
        follower = await Api(one.http).follower()
        path = f"/v1/followers/{follower['id']}"
        key = bearer(follower["api_key"])

        # Act: the key's requests alternate between the instances.
        statuses = [
            (await server.http.get(path, headers=key)).status_code
            for server in (one, two, one, two)
        ]

    # Assert: the fourth is over the budget both instances share.
    assert statuses == [200, 200, 200, 429]
