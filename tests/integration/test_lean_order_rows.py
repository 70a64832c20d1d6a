"""An order row holds its own facts and its fill's row what all the fill's orders share: from
the two, the relay rebuilds the (version 2) message the engine sent, byte for byte, and the API
the explanation the engine planned the order with, on the one-statement path and the chunked
one (COPY)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import msgspec
import pytest
from sqlalchemy import select

from app.db.repositories.accounts import FollowerRepository, LeaderRepository
from app.db.repositories.orders import OrderRepository
from app.db.repositories.trading import InstrumentRepository, SubscriptionRepository
from app.db.tables import FollowerOrder, LeaderFill
from app.dispatch.relay import outbox_item
from app.domain import drift
from app.domain.model import Fill, Side
from app.executors.protocol.messages import Explanation, FillMessages, sizing_document
from app.runtime import Runtime
from app.sizing.engine import FillOutcome
from tests.conftest import ROOT, TEST_DATABASE_URL, make_settings, pg_dsn
from tests.integration.test_migrations import SCRATCH_URL

# (equity or None, multiplier, sizing): skips, caps (clamps), IOC limits, other modes, a
# subscription with no equity, one that denies the symbol, one below its equity floor.
FOLLOWERS: list[tuple[str | None, str, dict[str, Any]]] = [
    ("10000", "1", {}),
    ("3333.33", "0.37", {}),
    ("25000", "2.5", {"max_order_notional": "1500"}),
    ("10000", "1", {"max_slippage": "0.005"}),
    ("10000", "1", {"mode": "fixed_notional", "notional": "250"}),
    ("10000", "0.5", {"mode": "fixed_multiplier"}),
    (None, "1", {}),
    ("10000", "1", {"symbols": {"deny": ["BTCUSDT"]}}),
    ("10000", "1", {"equity_floor": "20000"}),
    ("7777.7777", "1.1", {"max_position_notional": "9000", "rounding": "nearest"}),
]
# Open; flip just past flat (most followers' opening leg rounds to zero: held back, the close
# sent); add; flip; reduce. Prices with and without decimals.
FILLS = [
    ("f-1", Side.BUY, "2", "50000"),
    ("f-2", Side.SELL, "2.004", "50010.5"),
    ("f-3", Side.SELL, "0.7", "49990"),
    ("f-4", Side.BUY, "3.3", "50001.25"),
    ("f-5", Side.SELL, "1.25", "50002"),
]


async def arrange(runtime: Runtime) -> tuple[UUID, list[UUID]]:
    async with runtime.unit_of_work() as uow:
        await InstrumentRepository(uow.session).upsert(
            "BTCUSDT", Decimal("0.001"), Decimal(0), Decimal(0), Decimal("0.1")
        )
        leader = await LeaderRepository(uow.session).add("L", "push", None, None)
        await runtime.pipeline.record_equity(uow, Decimal(100000), None, leader_id=leader.id)
        subs = []
        for n, (equity, multiplier, sizing) in enumerate(FOLLOWERS):
            follower = await FollowerRepository(uow.session).add(f"F{n}", f"hash-{n}")
            if equity is not None:
                await runtime.pipeline.record_equity(
                    uow, Decimal(equity), None, follower_id=follower.id
                )
            sub = await SubscriptionRepository(uow.session).add(
                follower.id, leader.id, Decimal(multiplier), sizing
            )
            subs.append(sub.id)
        await uow.commit()
    await runtime.equity.reload()
    return leader.id, subs


class Planned:
    """The explanation each order was planned with, as the engine built it (the message sent
    no longer carries it): ``FillMessages.explanation`` is called once per plan, then
    ``FillMessages.lean`` once per order of that plan."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.by_order: dict[str, dict[str, Any]] = {}
        last: list[Explanation] = []
        explain, lean = FillMessages.explanation, FillMessages.lean

        def explanation(messages: FillMessages, *args: Any) -> Explanation:
            made = explain(messages, *args)
            last[:] = [made]
            return made

        def lean_order(messages: FillMessages, order_id: str, *args: Any) -> str:
            self.by_order[order_id] = json.loads(msgspec.json.encode(last[0]))
            return lean(messages, order_id, *args)

        monkeypatch.setattr(FillMessages, "explanation", explanation)
        monkeypatch.setattr(FillMessages, "lean", lean_order)


async def stored(runtime: Runtime, outcome: FillOutcome, planned: Planned) -> list[tuple[str, str]]:
    """Each pending order of ``outcome`` as sent, and as the relay rebuilds it from the
    database; every order's explanation as the API rebuilds it, checked against the plan's."""
    pairs = []
    async with runtime.unit_of_work() as uow:
        repo = OrderRepository(uow.session)
        _, rows = await repo.undispatched(0, 1000)
        relayed = {row.order_id: outbox_item(row).payload for row in rows}
        for order in outcome.orders:
            found = await repo.get(order.follower_id, order.order_id)
            assert found is not None
            assert sizing_document(*found) == planned.by_order[order.order_id]
            if not order.skipped:
                pairs.append((order.payload, relayed[order.order_id]))
    return pairs


@pytest.mark.parametrize("chunk", [1000, 3], ids=["one_statement", "chunked_copy"])
async def test_the_stored_order_rebuilds_the_message_sent(
    live: Runtime, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange
    planned = Planned(monkeypatch)
    live.sizing.chunk = chunk
    live.sizing.first_chunk = chunk
    leader_id, subs = await arrange(live)

    # Act
    pairs: list[tuple[str, str]] = []
    kinds: set[tuple[str, str]] = set()
    for fill_id, side, qty, price in FILLS:
        now = datetime.now(UTC)
        fill = Fill(leader_id, fill_id, "BTCUSDT", side, Decimal(qty), Decimal(price), now, now)
        outcome = await live.sizing.process(fill)
        pairs += await stored(live, outcome, planned)
        kinds |= {(o.status, o.skip_reason or "") for o in outcome.orders}
    # A follower resync: its plan leaves the leader where it was, unlike the fill's row.
    resynced = await live.sizing.resync_follower(
        leader_id, subs[0], "BTCUSDT", ("follower_resync:x:1", Side.BUY, Decimal("0.05")),
        drift.resync_plan,
    )  # fmt: skip
    assert resynced is not None
    pairs += await stored(live, resynced, planned)

    # Assert: the scenario covers sent and skipped orders, and every one rebuilds exactly.
    assert {status for status, _ in kinds} == {"pending", "skipped"}
    assert len(planned.by_order) > len(FOLLOWERS) * len(FILLS)
    assert [sent for sent, _ in pairs] == [rebuilt for _, rebuilt in pairs]
    documents = [json.loads(sent) for sent, _ in pairs]
    assert {d["v"] for d in documents} == {2}
    explanations = planned.by_order
    assert any(e["clamps"] for e in explanations.values())
    assert any(d["limit_price"] is not None for d in documents)
    assert any(d["reduce_only"] for d in documents)
    assert any(explanations[d["order_id"]]["skip_reason"] and d["qty"] != "0" for d in documents)


async def test_migrating_down_and_up_keeps_every_order_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Arrange: orders recorded on a scratch database at head, by the engine.
    planned = Planned(monkeypatch)
    url = SCRATCH_URL.replace("_migrations", "_lean_rows")
    name = url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(pg_dsn(TEST_DATABASE_URL).rsplit("/", 1)[0] + "/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()

    def migrate(*args: str) -> None:
        env = {**os.environ, "COPYTRADE_DATABASE_URL": url}
        done = subprocess.run(
            [sys.executable, "-m", "alembic", *args],
            cwd=ROOT, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]

    migrate("upgrade", "head")
    runtime = Runtime(make_settings(database_url=url))
    await runtime.open()
    try:
        leader_id, _ = await arrange(runtime)
        sent: dict[str, str] = {}
        for fill_id, side, qty, price in FILLS:
            now = datetime.now(UTC)
            fill = Fill(leader_id, fill_id, "BTCUSDT", side, Decimal(qty), Decimal(price), now, now)
            outcome = await runtime.sizing.process(fill)
            sent |= {o.order_id: o.payload for o in outcome.orders if not o.skipped}
    finally:
        await runtime.stop()
    # Act: down to the payload column, then up again.
    migrate("downgrade", "0021")
    conn = await asyncpg.connect(pg_dsn(url))
    try:
        payloads = {r["id"]: json.loads(r["payload"]) for r in await conn.fetch(PAYLOADS)}
    finally:
        await conn.close()
    migrate("upgrade", "head")
    runtime = Runtime(make_settings(database_url=url))
    await runtime.open()
    try:
        async with runtime.unit_of_work() as uow:
            stored = select(FollowerOrder, LeaderFill).join(
                LeaderFill, LeaderFill.id == FollowerOrder.fill_pk
            )
            explained = {
                order.id: sizing_document(order, fill)
                for order, fill in (await uow.session.execute(stored)).all()
            }
            _, rows = await OrderRepository(uow.session).undispatched(0, 1000)
            relayed = {row.order_id: outbox_item(row).payload for row in rows}
    finally:
        await runtime.stop()

    # Assert: the payload written back holds the order sent and the explanation planned, and
    # after the way up the relay's message is the one sent and the API's explanation the plan's.
    assert {k: v["sizing"] for k, v in payloads.items()} == planned.by_order
    for order_id, message in sent.items():
        lean = json.loads(message)
        assert {k: payloads[order_id][k] for k in V1_FIELDS} == {k: lean[k] for k in V1_FIELDS}
    assert explained == planned.by_order
    assert relayed == sent


PAYLOADS = "SELECT id, payload FROM follower_order"
# What version 1 and version 2 both carry.
V1_FIELDS = (
    "order_id", "follower_id", "leader_id", "subscription_id", "leader_fill_id", "symbol",
    "side", "qty", "type", "reduce_only", "limit_price", "time_in_force", "valid_until",
)  # fmt: skip
