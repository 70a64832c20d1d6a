"""Every leg recorded, and the rounding policy, through the API of the in-process server.

A reversal whose opening leg is held back stores it as a skipped order with its reason, in
``GET /v1/followers/{id}/orders`` and on the order feed, beside the close it sent.
"""

from __future__ import annotations

import asyncio
import json

from redis.asyncio import Redis
from websockets.asyncio.client import connect

from tests.integration.test_sizing_api import btc, copier, orders_by_fill, push, streamed
from tests.support import Api, LiveServer, bearer, feed_subscribed


async def test_a_reversal_held_back_by_min_notional_records_its_opening_leg_as_skipped(
    server: LiveServer, redis: Redis
) -> None:
    # Arrange: 0.001 lots, min_notional 5; at 1,000 per BTC the new short of 0.002 is worth 2.
    api = Api(server.http)
    c = await copier(api)
    await push(server, c.leader, btc("f-1", "buy", "0.05", "1000"))  # follower 0.005
    url = f"{server.ws_url}/v1/followers/{c.follower_id}/orders/ws"

    # Act: the leader goes from 0.05 long to 0.02 short
    async with connect(url, additional_headers=bearer(c.key)) as feed:
        await feed_subscribed(redis, c.follower_id)
        await push(server, c.leader, btc("f-2", "sell", "0.07", "1000"))
        messages = [json.loads(await asyncio.wait_for(feed.recv(), timeout=5)) for _ in range(2)]

    # Assert: the close went out; the short is an order of its own, skipped, with its reason.
    orders = await orders_by_fill(api, c.follower_id)
    got = [
        (o["side"], o["qty"], o["reduce_only"], o["status"], o["skip_reason"])
        for o in orders["f-2"]
    ]
    assert got == [
        ("sell", "0.005", True, "dispatched", None),
        ("sell", "0", False, "skipped", "below_min_notional"),
    ]
    assert {o["sizing"]["target"] for o in orders["f-2"]} == {"-0.002"}
    by_status = {m["status"]: m for m in messages}
    assert set(by_status) == {"dispatched", "skipped"}
    assert by_status["skipped"]["skip_reason"] == "below_min_notional"
    assert by_status["skipped"]["order"]["order_id"] == next(
        o["order_id"] for o in orders["f-2"] if o["status"] == "skipped"
    )
    assert await streamed(redis, c.follower_id) == [
        ("f-1", "BTCUSDT", "buy", "0.005", False),
        ("f-2", "BTCUSDT", "sell", "0.005", True),
    ]


async def test_rounding_defaults_to_conservative_and_nearest_is_stored_as_given(
    server: LiveServer, redis: Redis
) -> None:
    # Arrange: target 0.14 after the sale, from 0.2 held
    api = Api(server.http)
    conservative = await copier(api)
    nearest = await copier(api, {"rounding": "nearest"}, leader=conservative.leader)
    await api.instrument("BTCUSDT", qty_step="0.1", min_qty="0.1", min_notional="5")

    # Act
    await push(
        server,
        conservative.leader,
        btc("f-1", "buy", "2"),
        btc("f-2", "sell", "0.5"),  # target 0.15: conservative sells 0.1; nearest keeps 0.2
    )

    # Assert
    assert conservative.subscription["sizing"] == {}
    assert nearest.subscription["sizing"] == {"rounding": "nearest"}
    assert await streamed(redis, conservative.follower_id) == [
        ("f-1", "BTCUSDT", "buy", "0.2", False),
        ("f-2", "BTCUSDT", "sell", "0.1", True),
    ]
    assert await streamed(redis, nearest.follower_id) == [("f-1", "BTCUSDT", "buy", "0.2", False)]
    skipped = (await orders_by_fill(api, nearest.follower_id))["f-2"]
    assert [(o["status"], o["skip_reason"]) for o in skipped] == [("skipped", "rounds_to_zero")]
