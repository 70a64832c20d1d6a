"""Seed demo accounts, then trade as a leader through the service's own push websocket.

Everything goes through the real path (push websocket, sizing, outbox, Redis, feed); the demo
only plays the leader and watches the followers' feeds to print what they receive.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING
from uuid import UUID

import structlog
from sqlalchemy import select, update
from websockets.asyncio.client import connect

from app.db.repositories.accounts import FollowerRepository, LeaderRepository
from app.db.repositories.follower_accounts import FollowerAccountRepository
from app.db.repositories.trading import InstrumentRepository, SubscriptionRepository
from app.db.tables import Follower, Leader
from app.demo.venue import WS_FAPI_PATH, DemoVenue, serve
from app.dispatch.keys import order_stream
from app.executors.paper import PaperExecutor
from app.loops import Backoff, supervise
from app.security.tokens import FOLLOWER_KEY_PREFIX, PUSH_TOKEN_PREFIX, hash_secret, new_secret
from app.venues.accounts import open_fence

if TYPE_CHECKING:
    from app.runtime import Runtime

log = structlog.get_logger("demo")

LEADER_NAME = "Demo leader"
LEADER_EQUITY = Decimal("250000")
FOLLOWERS = (
    ("Demo follower A", Decimal("10000")),
    ("Demo follower B", Decimal("40000")),
    ("Demo follower C", Decimal("2500")),
)
# Its orders go to a loopback Binance USD-M venue, through the execute role: its equity is
# the venue's, read over REST; no paper executor for it.
VENUE_FOLLOWER = ("Demo follower D (venue)", Decimal("20000"))
# symbol -> (qty_step, min_qty, min_notional, start price, leader lot sizes)
MARKETS = {
    "BTCUSDT": (
        Decimal("0.001"),
        Decimal("0.001"),
        Decimal("5"),
        Decimal("64000"),
        ("0.05", "0.1", "0.25"),
    ),
    "ETHUSDT": (
        Decimal("0.01"),
        Decimal("0.01"),
        Decimal("5"),
        Decimal("3200"),
        ("0.5", "1", "2.5"),
    ),
    "SOLUSDT": (Decimal("0.1"), Decimal("0.1"), Decimal("5"), Decimal("150"), ("5", "12", "30")),
}


@dataclass(frozen=True, slots=True)
class DemoAccounts:
    leader_id: UUID
    push_token: str
    followers: list[tuple[UUID, str, str]]  # (id, name, api key)
    venue_follower: tuple[UUID, str, str] | None = None


async def seed(runtime: Runtime) -> DemoAccounts:
    """Create the demo accounts once; on every start, issue fresh credentials to print."""
    async with runtime.unit_of_work() as uow:
        session = uow.session
        push_token = new_secret(PUSH_TOKEN_PREFIX)
        leader = (
            await session.execute(
                select(Leader).where(Leader.name == LEADER_NAME, Leader.deleted_at.is_(None))
            )
        ).scalar_one_or_none()
        if leader is None:
            leader = await LeaderRepository(session).add(
                LEADER_NAME, "push", None, hash_secret(push_token)
            )
        else:
            await session.execute(
                update(Leader)
                .where(Leader.id == leader.id)
                .values(push_token_hash=hash_secret(push_token))
            )
        await runtime.pipeline.record_equity(uow, LEADER_EQUITY, None, leader_id=leader.id)
        for symbol, (step, min_qty, min_notional, *_rest) in MARKETS.items():
            await InstrumentRepository(session).upsert(symbol, step, min_qty, min_notional)

        followers: list[tuple[UUID, str, str]] = []
        subs = SubscriptionRepository(session)
        for name, equity in FOLLOWERS:
            key = new_secret(FOLLOWER_KEY_PREFIX)
            follower = (
                await session.execute(select(Follower).where(Follower.name == name))
            ).scalar_one_or_none()
            if follower is None:
                follower = await FollowerRepository(session).add(name, hash_secret(key))
            else:
                follower.api_key_hash = hash_secret(key)
            await runtime.pipeline.record_equity(uow, equity, None, follower_id=follower.id)
            if await subs.live_for_pair(follower.id, leader.id) is None:
                await subs.add(follower.id, leader.id, Decimal(1))
            followers.append((follower.id, name, key))
        await uow.commit()
    return DemoAccounts(leader.id, push_token, followers)


async def seed_venue_follower(
    runtime: Runtime, leader_id: UUID, venue: DemoVenue, port: int
) -> tuple[UUID, str, str] | None:
    """The follower whose account is on the demo venue (this run's port and keys)."""
    if runtime.cipher is None:
        return None
    name, _equity = VENUE_FOLLOWER
    key = new_secret(FOLLOWER_KEY_PREFIX)
    async with runtime.unit_of_work() as uow:
        session = uow.session
        follower = (
            await session.execute(select(Follower).where(Follower.name == name))
        ).scalar_one_or_none()
        if follower is None:
            follower = await FollowerRepository(session).add(name, hash_secret(key))
        else:
            follower.api_key_hash = hash_secret(key)
        subs = SubscriptionRepository(session)
        if await subs.live_for_pair(follower.id, leader_id) is None:
            await subs.add(follower.id, leader_id, Decimal(1))
        secret = runtime.cipher.encrypt(
            json.dumps({"api_key": venue.api_key, "api_secret": venue.api_secret})
        )
        config = {
            "rest_url": f"http://127.0.0.1:{port}",
            "ws_url": f"ws://127.0.0.1:{port}",
            "ws_api_url": f"ws://127.0.0.1:{port}{WS_FAPI_PATH}",
        }
        await FollowerAccountRepository(session).put(follower.id, "binance-usdm", config, secret)
        await open_fence(runtime.redis, follower.id)
        await uow.commit()
    await runtime.report_reader.track(follower.id)
    await runtime.accounts.refresh()
    return follower.id, name, key


def banner(runtime: Runtime, accounts: DemoAccounts) -> str:
    base = runtime.settings.base_url
    ws_base = base.replace("http", "ws", 1)
    admin = runtime.settings.admin_token.get_secret_value()
    lines = [
        "",
        "=" * 78,
        " Copytrade demo is running: a simulated leader trades BTC, ETH and SOL.",
        f" Dashboard:    {base}/   (sign in with the admin token or a follower key)",
        f" API docs:     {base}/docs",
        f" Admin token:  {admin}",
        f" Health:       {base}/readyz     Metrics: {base}/metrics",
        " Follower feeds (open one with any websocket client, e.g. `websocat`):",
    ]
    for follower_id, name, key in accounts.followers:
        lines.append(f"   {name}: {ws_base}/v1/followers/{follower_id}/orders/ws?token={key}")
    if accounts.venue_follower:
        follower_id, name, key = accounts.venue_follower
        lines += [
            f" {name} trades on a loopback Binance USD-M venue (the execute role):",
            f"   curl -H 'Authorization: Bearer {key}' {base}/v1/followers/{follower_id}/account",
        ]
    stream = order_stream(accounts.followers[0][0])
    lines += [
        " Orders as executors see them:",
        f"   redis-cli -u {runtime.settings.redis_url} XRANGE '{stream}' - +",
        " Set COPYTRADE_DEMO=false to run without the demo.",
        "=" * 78,
        "",
    ]
    return "\n".join(lines)


async def start_demo(runtime: Runtime) -> None:
    prices = {symbol: spec[3] for symbol, spec in MARKETS.items()}
    venue = DemoVenue(prices, VENUE_FOLLOWER[1])
    async with serve(venue) as port:
        accounts = await seed(runtime)
        venue_follower = await seed_venue_follower(runtime, accounts.leader_id, venue, port)
        accounts = DemoAccounts(
            accounts.leader_id, accounts.push_token, accounts.followers, venue_follower
        )
        print(banner(runtime, accounts), flush=True)  # noqa: T201 - the banner is for a human
        watched = accounts.followers + ([venue_follower] if venue_follower else [])
        watchers = [
            asyncio.create_task(watch_feed(runtime, fid, name, key)) for fid, name, key in watched
        ]
        # The paper executor closes the loop for the others: it fills each order and reports.
        stop_executor = asyncio.Event()
        executor = PaperExecutor(
            runtime.redis, [fid for fid, _, _ in accounts.followers], Decimal("0.0005")
        )
        watchers.append(asyncio.create_task(executor.run(stop_executor)))
        try:
            await supervise(
                "demo_leader",
                lambda backoff: trade(runtime, accounts, prices, backoff),
                Backoff(0.2, 5.0),
            )
        finally:
            stop_executor.set()
            for task in watchers:
                task.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)


async def trade(
    runtime: Runtime, accounts: DemoAccounts, prices: dict[str, Decimal], backoff: Backoff
) -> None:
    url = runtime.settings.base_url.replace("http", "ws", 1)
    rng = random.Random()
    positions = dict.fromkeys(MARKETS, Decimal(0))
    async with connect(
        f"{url}/v1/leaders/{accounts.leader_id}/fills/ws",
        additional_headers={"Authorization": f"Bearer {accounts.push_token}"},
    ) as ws:
        backoff.reset()
        while True:
            symbol = rng.choice(list(MARKETS))
            step_pct = Decimal(rng.randint(-30, 30)) / Decimal(10000)
            prices[symbol] = (prices[symbol] * (1 + step_pct)).quantize(
                Decimal("0.01"), rounding=ROUND_DOWN
            )
            qty = Decimal(rng.choice(MARKETS[symbol][4]))
            # Lean toward closing when the position is large, so the demo shows both sides.
            side = "sell" if positions[symbol] > qty * 2 or rng.random() < 0.45 else "buy"
            positions[symbol] += qty if side == "buy" else -qty
            frame = {
                "type": "fill",
                "fill_id": f"demo-{uuid.uuid4().hex[:12]}",
                "symbol": symbol,
                "side": side,
                "qty": str(qty),
                "price": str(prices[symbol]),
            }
            await ws.send(json.dumps(frame))
            ack = json.loads(await ws.recv())
            log.info(
                "demo_leader_fill",
                **{k: frame[k] for k in ("fill_id", "symbol", "side", "qty", "price")},
                ack=ack.get("status"),
            )
            await asyncio.sleep(runtime.settings.demo_interval_s)


async def watch_feed(runtime: Runtime, follower_id: UUID, name: str, key: str) -> None:
    url = runtime.settings.base_url.replace("http", "ws", 1)

    async def _watch(backoff: Backoff) -> None:
        async with connect(f"{url}/v1/followers/{follower_id}/orders/ws?token={key}") as ws:
            backoff.reset()
            async for raw in ws:
                msg = json.loads(raw)
                if msg["type"] == "order_status":
                    log.info(
                        "demo_order_status",
                        follower=name,
                        order_id=msg["order_id"],
                        status=msg["status"],
                        filled_qty=msg["filled_qty"],
                        avg_price=msg["avg_price"],
                    )
                    continue
                order = msg["order"]
                log.info(
                    "demo_follower_order",
                    follower=name,
                    status=msg["status"],
                    side=order["side"],
                    qty=order["qty"],
                    symbol=order["symbol"],
                    skip_reason=msg["skip_reason"],
                    order_id=order["order_id"],
                )

    await supervise(f"demo_watch:{name}", _watch, Backoff(0.2, 5.0))
