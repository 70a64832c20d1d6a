"""An OKX leader end to end: the live service follows the fake OKX on loopback and the
exact follower orders come out, through a normal run, a dropped connection and a stall."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
from prometheus_client import REGISTRY

from tests.conftest import pg_dsn
from tests.support import Api, LiveServer, eventually, read_stream, start_live_server
from tests.venues.fake_okx import API_KEY, API_SECRET, PASSPHRASE, FakeOkx, Trade, now_ms
from tests.venues.harness import Running, run_venue, venue_settings

WAIT_S = 30.0


@dataclass
class Desk:
    server: LiveServer
    api: Api
    running: Running
    okx: FakeOkx
    redis: Any
    leader_id: str
    follower_id: str

    async def orders(self, count: int) -> list[tuple[str, str, str, str, bool]]:
        """The follower's stream once it holds ``count`` orders, as (fill, symbol, side, qty,
        reduce_only); fails if it does not get there in time."""

        async def enough() -> list[dict[str, Any]] | None:
            stream = await read_stream(self.redis, self.follower_id)
            return stream if len(stream) >= count else None

        stream = await eventually(enough, f"{count} orders in the stream", WAIT_S)
        return [
            (o["leader_fill_id"], o["symbol"], o["side"], o["qty"], o["reduce_only"])
            for o in stream
        ]

    async def listener(self) -> dict[str, Any]:
        leader = await self.api.call("GET", f"/v1/leaders/{self.leader_id}", 200)
        state: dict[str, Any] = leader["listener"] or {}
        return state

    async def sentinel(self, trade_id: str, count: int) -> list[tuple[str, str, str, str, bool]]:
        """Push one more fill live and wait for its order: fills apply in order, so any
        duplicate of an earlier fill would already be in the stream."""
        await self.okx.trade(Trade("BTC-USDT-SWAP", trade_id, "buy", "1", "30000"))
        orders = await self.orders(count)
        assert orders[-1][0] == f"BTC-USDT-SWAP:{trade_id}"
        return orders


@asynccontextmanager
async def okx_desk(redis: Any) -> AsyncIterator[Desk]:
    settings = venue_settings()
    async with run_venue(FakeOkx()) as running, start_live_server(settings) as server:
        okx = running.venue
        assert isinstance(okx, FakeOkx)
        api = Api(server.http)
        feed = {
            "kind": "okx",
            "api_key": API_KEY,
            "api_secret": API_SECRET,
            "passphrase": PASSPHRASE,
            "rest_url": running.rest_url,
            "ws_url": running.ws_base + okx.ws_path,
        }
        leader = await api.leader("okx-leader", feed)
        shown = json.dumps(leader) + json.dumps(
            await api.call("GET", f"/v1/leaders/{leader['id']}", 200)
        )
        for secret in (API_KEY, API_SECRET, PASSPHRASE):
            assert secret not in shown
        assert leader["feed"]["kind"] == "okx"
        assert leader["feed"]["config"]["inst_type"] == "SWAP"
        follower = await api.follower()
        await api.follower_equity(follower["id"], "10000")
        await api.instrument("BTC-USDT-SWAP", qty_step="0.001", min_qty="0.001")
        await api.instrument("ETH-USDT-SWAP", qty_step="0.01", min_qty="0.01")
        await api.subscribe(follower["id"], leader["id"])
        await okx.wait_subscribed(WAIT_S)
        yield Desk(server, api, running, okx, redis, leader["id"], follower["id"])


async def test_normal_run_of_fills(redis: Any) -> None:
    async with okx_desk(redis) as desk:
        okx = desk.okx
        rejected = REGISTRY.get_sample_value("copytrade_frames_rejected_total", {"source": "okx"})
        t = now_ms()
        btc = Trade("BTC-USDT-SWAP", "101", "buy", "10", "30000", pos_side="long", fill_time=t)
        eth = Trade("ETH-USDT-SWAP", "201", "sell", "50", "1800", pos_side="short", fill_time=t)
        part1 = Trade(
            "BTC-USDT-SWAP", "102", "buy", "5", "30010", pos_side="long", ord_id="9", fill_time=t
        )
        part2 = Trade(
            "BTC-USDT-SWAP", "103", "buy", "5", "30020", pos_side="long", ord_id="9", fill_time=t
        )
        liquidation = Trade(
            "BTC-USDT-SWAP",
            "-104",
            "sell",
            "20",
            "29000",
            pos_side="long",
            category="full_liquidation",
            fill_time=t + 1,
        )
        placed = btc.order_row(tradeId="", fillSz="0", fillPx="", state="live", ordId="8")

        # Two executions and a status update in one message; then one order filled in two
        # parts; then things that are not fills; then a liquidation.
        okx.add_history(btc, eth)
        await okx.push_orders(btc.order_row(), eth.order_row(), placed)
        await okx.trade(part1)
        await okx.trade(part2)
        await okx.push_orders(btc.order_row(tradeId="105", category="delivery"))
        await okx.push_orders(btc.order_row(tradeId="", fillSz="0", state="canceled"))
        await okx.push({"event": "notice", "code": "64008", "msg": "upgrade soon"})
        await okx.push('{"arg": {"channel": "orders"}, "data": [')
        await okx.trade(liquidation)

        # Leader equity 100000 (REST), follower 10000: targets are a tenth of the leader's.
        orders = await desk.orders(5)
        assert orders == [
            ("BTC-USDT-SWAP:101", "BTC-USDT-SWAP", "buy", "0.01", False),
            ("ETH-USDT-SWAP:201", "ETH-USDT-SWAP", "sell", "0.5", False),
            ("BTC-USDT-SWAP:102", "BTC-USDT-SWAP", "buy", "0.005", False),
            ("BTC-USDT-SWAP:103", "BTC-USDT-SWAP", "buy", "0.005", False),
            # The liquidation took the leader flat: the follower closes all of its 0.02.
            ("BTC-USDT-SWAP:-104", "BTC-USDT-SWAP", "sell", "0.02", True),
        ]
        orders = await desk.sentinel("106", 6)
        assert len(orders) == 6
        after = REGISTRY.get_sample_value("copytrade_frames_rejected_total", {"source": "okx"})
        assert (after or 0) - (rejected or 0) == 1  # the malformed message only

        conn = await asyncpg.connect(pg_dsn())
        try:
            flagged = await conn.fetch(
                "SELECT fill_id, liquidation FROM leader_fill WHERE leader_id = $1"
                " ORDER BY fill_id",
                UUID(desk.leader_id),
            )
            assert [(r["fill_id"], r["liquidation"]) for r in flagged] == [
                ("BTC-USDT-SWAP:-104", True),
                ("BTC-USDT-SWAP:101", False),
                ("BTC-USDT-SWAP:102", False),
                ("BTC-USDT-SWAP:103", False),
                ("BTC-USDT-SWAP:106", False),
                ("ETH-USDT-SWAP:201", False),
            ]

            # Equity is read over REST on a schedule and stored.
            okx.total_eq = "123456.78"

            async def refreshed() -> bool:
                rows = await conn.fetch(
                    "SELECT equity FROM equity_snapshot WHERE leader_id = $1",
                    UUID(desk.leader_id),
                )
                return Decimal("123456.78") in [r["equity"] for r in rows] and Decimal(
                    "100000"
                ) in [r["equity"] for r in rows]

            await eventually(refreshed, "leader equity snapshots from REST", WAIT_S)
        finally:
            await conn.close()
        assert okx.refused == []


async def test_fills_made_while_disconnected_are_backfilled_once(redis: Any) -> None:
    async with okx_desk(redis) as desk:
        okx = desk.okx
        await okx.trade(Trade("ETH-USDT-SWAP", "1", "sell", "50", "1800", pos_side="short"))
        assert await desk.orders(1) == [("ETH-USDT-SWAP:1", "ETH-USDT-SWAP", "sell", "0.5", False)]
        before = (await desk.listener())["reconnects"]

        # Fills the stream never delivers, then the connection drops.
        close_part = Trade("ETH-USDT-SWAP", "2", "buy", "20", "1790", pos_side="short")
        btc = Trade("BTC-USDT-SWAP", "3", "buy", "3", "30000", pos_side="long")
        okx.add_history(close_part, btc)
        await okx.drop()
        await okx.wait_subscribed(WAIT_S)
        # After the reconnect the stream also delivers one of them: still one order.
        await okx.push_orders(close_part.order_row())

        orders = await desk.sentinel("4", 4)
        assert orders == [
            ("ETH-USDT-SWAP:1", "ETH-USDT-SWAP", "sell", "0.5", False),
            ("ETH-USDT-SWAP:2", "ETH-USDT-SWAP", "buy", "0.2", True),
            ("BTC-USDT-SWAP:3", "BTC-USDT-SWAP", "buy", "0.003", False),
            ("BTC-USDT-SWAP:4", "BTC-USDT-SWAP", "buy", "0.001", False),
        ]
        listener = await desk.listener()
        assert listener["reconnects"] > before
        assert listener["backfilled"] >= 2
        assert listener["state"] == "connected"
        assert okx.logins >= 2
        assert okx.refused == []


async def test_a_silent_socket_is_reconnected_and_backfilled(redis: Any) -> None:
    async with okx_desk(redis) as desk:
        okx = desk.okx
        await okx.trade(Trade("BTC-USDT-SWAP", "1", "buy", "10", "30000", pos_side="long"))
        await desk.orders(1)
        before = (await desk.listener())["reconnects"]
        logins = okx.logins

        # The socket stays open but nothing flows, pongs included; a fill happens meanwhile.
        desk.running.proxy.freeze()
        okx.add_history(Trade("BTC-USDT-SWAP", "2", "sell", "4", "30100", pos_side="long"))

        async def reconnecting() -> bool:
            listener = await desk.listener()
            return int(listener["reconnects"]) > before and "IdleTimeout" in str(
                listener["last_error"]
            )

        await eventually(reconnecting, "the idle timeout to end the silent session", WAIT_S)
        desk.running.proxy.thaw()

        orders = await desk.sentinel("3", 3)
        assert orders == [
            ("BTC-USDT-SWAP:1", "BTC-USDT-SWAP", "buy", "0.01", False),
            ("BTC-USDT-SWAP:2", "BTC-USDT-SWAP", "sell", "0.004", True),
            ("BTC-USDT-SWAP:3", "BTC-USDT-SWAP", "buy", "0.001", False),
        ]
        assert (await desk.listener())["state"] == "connected"
        assert okx.logins > logins
        assert okx.refused == []
