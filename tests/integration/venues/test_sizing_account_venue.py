"""A follower that connected an exchange account, and set no ``symbols.venue``, is sized on
its account's venue: the leader's symbol mapped onto it, with that venue's rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import UUID

import pytest

from app.db.repositories.follower_accounts import FollowerAccountRepository
from tests.conftest import make_settings
from tests.integration.venues.instrument_fakes import running_venues
from tests.integration.venues.test_sizing_across_venues import sent
from tests.support import (
    Api,
    LiveServer,
    eventually,
    fill_frame,
    push_socket,
    send_frame,
    start_live_server,
)

pytestmark = pytest.mark.usefixtures("clean")


@pytest.fixture
async def served() -> AsyncIterator[LiveServer]:
    # No execute role: the account is never traded, only its venue is read by sizing.
    async with running_venues() as venues:
        settings = make_settings(
            roles=["api", "ingest", "dispatch"],
            instrument_venues=list(venues.urls),
            instrument_urls=venues.urls,
        )
        async with start_live_server(settings) as server:
            api = Api(server.http)

            # The leader's symbol is found (and its base read) on Hyperliquid's list.
            async def loaded() -> bool:
                for venue in venues.urls:
                    params = {"venue": venue}
                    if not await api.call("GET", "/v1/instruments", 200, params=params):
                        return False
                return True

            await eventually(loaded, "every venue's rules at start-up", 20)
            yield server


async def test_a_follower_is_sized_on_its_connected_accounts_venue(served: LiveServer) -> None:
    # Arrange: a Hyperliquid-style leader (BTC, ETH); its follower (a twentieth of its equity)
    # subscribes with no symbols.venue, and the leader's book is cached by a first fill.
    api = Api(served.http)
    leader = await api.leader()
    await api.leader_equity(leader["id"], "100000")
    follower = await api.follower()
    await api.follower_equity(follower["id"], "5000")
    path = f"/v1/followers/{follower['id']}/subscriptions"
    await api.call("POST", path, 201, json={"leader_id": leader["id"], "sizing": {}})
    async with push_socket(served.ws_url, leader["id"], leader["push_token"]) as ws:
        eth = fill_frame("f-1", "ETH", "buy", "10", "3000")
        assert (await send_frame(ws, eth))["status"] == "accepted"
        before = sent(await api.settled_orders(follower["id"]))

        # Act: the follower connects a Binance account; then the leader buys BTC.
        async with served.runtime.sessionmaker() as session:
            await FollowerAccountRepository(session).put(
                UUID(follower["id"]), "binance-usdm", {}, "never-read"
            )
            await session.commit()
        leader_id = UUID(leader["id"])

        def book_dropped() -> bool:
            book = served.runtime.sizing._books.get(leader_id)
            return book is None or book.stale

        await eventually(book_dropped, "the leader's book reloaded after the account change")
        btc = fill_frame("f-2", "BTC", "buy", "1.134", "50000")
        assert (await send_frame(ws, btc))["status"] == "accepted"
    [listed] = await api.call("GET", path, 200, token=follower["api_key"])

    # Assert: no venue before (the leader's symbol in 1e-8 steps); then Binance's symbol and
    # its market step (MARKET_LOT_SIZE 0.01): 0.0567 BTC becomes 0.05.
    assert before == [("ETH", "dispatched", "0.5", None)]
    assert sent(await api.settled_orders(follower["id"])) == [
        ("BTCUSDT", "dispatched", "0.05", None),
        ("ETH", "dispatched", "0.5", None),
    ]
    assert {"leader_symbol": "BTC", "symbol": "BTCUSDT", "skip_reason": None} in listed["symbols"]
