"""A Hyperliquid follower through the whole service: the client registered for its kind is
built from the stored account and driven by the shared executor loop."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from eth_account import Account as Wallet
from redis.asyncio import Redis

from app.domain.ids import order_id
from tests.support import Api, eventually, fill_frame, push_socket, send_frame, start_live_server
from tests.venues.harness import run_venue, venue_settings
from tests.venues.hyperliquid_trading import Account, FakeHyperliquidTrading

AGENT_KEY = "0x" + "5d" * 32
ADDRESS = "0x2b5ad5c4795c026514f8317c7a215e218dccd6cf"


async def test_a_leader_fill_becomes_a_hyperliquid_order_and_comes_back_filled(
    redis: Redis,
) -> None:
    # Arrange
    venue = FakeHyperliquidTrading(prices={"BTC": Decimal("50000")})
    venue.register(ADDRESS, Wallet.from_key(AGENT_KEY).address, Account(equity=Decimal("10000")))
    settings = venue_settings(account_equity_interval_s=0.3)
    async with run_venue(venue) as running, start_live_server(settings) as server:
        api = Api(server.http)
        await api.instrument("BTC", qty_step="0.00001", min_qty="0.00001")
        leader = await api.leader()
        await api.leader_equity(leader["id"], "100000")
        follower = await api.follower()
        sub = await api.subscribe(follower["id"], leader["id"])
        path = f"/v1/followers/{follower['id']}/account"
        body = {
            "kind": "hyperliquid",
            "address": ADDRESS,
            "agent_key": AGENT_KEY,
            "rest_url": running.rest_url,
            "ws_url": running.ws_base + "/ws",
        }
        shown = await api.call("PUT", path, 200, json=body)
        assert AGENT_KEY[2:] not in str(shown)

        async def equity_read() -> bool:
            return bool((await api.call("GET", path, 200))["equity"] == "10000")

        await eventually(equity_read, "the account's equity read", within_s=30)

        # Act
        async with push_socket(server.ws_url, leader["id"], leader["push_token"]) as ws:
            reply = await send_frame(ws, fill_frame("hl-1", "BTC", "buy", "1", "50000"))
            assert reply["type"] == "ack"
        oid = order_id(leader["id"], "hl-1", sub["id"])
        order_path = f"/v1/followers/{follower['id']}/orders/{oid}"

        async def filled() -> dict[str, Any] | None:
            order: dict[str, Any] = await api.call("GET", order_path, 200)
            return order if order["status"] == "filled" else None

        order = await eventually(filled, f"order {oid} filled", within_s=30)

    # Assert: one order at the venue under the order's cloid, a tenth of the leader's move
    assert (order["filled_qty"], order["avg_price"]) == ("0.1", "50000")
    assert sum(venue.placements.values()) == 1
    assert venue.accounts[ADDRESS.lower()].positions == {"BTC": Decimal("0.1")}
