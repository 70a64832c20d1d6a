"""copytrade replay: the exact orders a scripted fill history would have produced, nothing written.

The history, leader equity 100000 throughout, follower equity 10000 then 20000 from T0+150s,
BTCUSDT in 0.001 lots, ETHUSDT in 0.001 lots with a 5 USDT minimum notional:

    T0-10m  buy  1      BTCUSDT (before --from: the leader starts the replay long 1)
    T0+1m   buy  1      BTCUSDT  leader 2
    T0+2m   sell 0.5    BTCUSDT  leader 1.5
    T0+130s buy  0.01   ETHUSDT  leader 0.01
    T0+200s a 'sync' event (copy_open_positions): not a leader trade, left out
    T0+3m   buy  0.5    BTCUSDT  leader 2
    T0+4m   sell 2.0001 BTCUSDT  leader -0.0001 (through zero)
    T0+400s buy  1      BTCUSDT (after --to: left out)
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from app.api.auth import FOLLOWER_KEY_PREFIX, hash_secret, new_secret
from tests.conftest import TEST_DATABASE_URL
from tests.integration.cli_runner import cli_env, run_cli
from tests.support import LiveServer

# Straight from Postgres; without it the command asks the API.
DIRECT = ("--database-url", TEST_DATABASE_URL)
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
COUNTED = (
    "leader",
    "follower",
    "subscription",
    "equity_snapshot",
    "instrument",
    "leader_fill",
    "follower_order",
    "order_event",
    "leader_position",
    "subscription_position",
    "follower_position",
    "quarantined_fill",
)


async def _counts(db: asyncpg.Connection) -> dict[str, int]:
    return {table: await db.fetchval(f"SELECT count(*) FROM {table}") for table in COUNTED}


async def _history(db: asyncpg.Connection) -> tuple[uuid.UUID, uuid.UUID]:
    leader, follower = uuid.uuid4(), uuid.uuid4()
    await db.execute("INSERT INTO leader (id, name, feed_kind) VALUES ($1, 'L', 'push')", leader)
    await db.execute("INSERT INTO follower (id, name) VALUES ($1, 'F')", follower)
    await db.executemany(
        "INSERT INTO equity_snapshot (leader_id, follower_id, equity, as_of)"
        " VALUES ($1, $2, $3, $4)",
        [
            (leader, None, Decimal(100000), T0 - timedelta(hours=1)),
            (None, follower, Decimal(10000), T0 - timedelta(hours=1)),
            (None, follower, Decimal(20000), T0 + timedelta(seconds=150)),
        ],
    )
    await db.executemany(
        "INSERT INTO instrument (symbol, qty_step, min_qty, min_notional) VALUES ($1, $2, $3, $4)",
        [
            ("BTCUSDT", Decimal("0.001"), Decimal("0.001"), Decimal(5)),
            ("ETHUSDT", Decimal("0.001"), Decimal("0.001"), Decimal(5)),
        ],
    )
    fills = [
        ("p0", "trade", "BTCUSDT", "buy", "1", "50000", -600),
        ("f1", "trade", "BTCUSDT", "buy", "1", "50000", 60),
        ("f2", "trade", "BTCUSDT", "sell", "0.5", "50000", 120),
        ("e1", "trade", "ETHUSDT", "buy", "0.01", "3000", 130),
        ("sync:x:BTCUSDT", "sync", "BTCUSDT", "buy", "1", "50000", 200),
        ("f3", "trade", "BTCUSDT", "buy", "0.5", "50000", 180),
        ("f4", "trade", "BTCUSDT", "sell", "2.0001", "50000", 240),
        ("late", "trade", "BTCUSDT", "buy", "1", "50000", 400),
    ]
    await db.executemany(
        "INSERT INTO leader_fill (leader_id, fill_id, kind, symbol, side, qty, price, event_at,"
        " received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        [
            (leader, fid, kind, sym, side, Decimal(qty), Decimal(px), T0 + timedelta(seconds=s))
            for fid, kind, sym, side, qty, px, s in fills
        ],
    )
    return leader, follower


def _orders(result: dict[str, Any]) -> list[tuple[str, str, str, bool, str | None, str]]:
    """(fill, side, qty, reduce_only, skip reason, follower position after) per order."""
    rows = []
    for fill in result["fills"]:
        legs = fill["orders"] or [None]
        for leg in legs:
            rows.append(
                (
                    fill["fill_id"],
                    leg["side"] if leg else "-",
                    leg["qty"] if leg else "-",
                    leg["reduce_only"] if leg else False,
                    fill["skip_reason"],
                    fill["follower_position_after"],
                )
            )
    return rows


async def test_replay_of_a_subscription_gives_the_exact_orders_and_writes_nothing(
    db: asyncpg.Connection,
) -> None:
    # Arrange: the follower's subscription as it is now (target mode, multiplier 1)
    leader, follower = await _history(db)
    await db.execute(
        "INSERT INTO subscription (id, follower_id, leader_id, multiplier, status, sizing)"
        " VALUES ($1, $2, $3, 1, 'active', '{}')",
        uuid.uuid4(),
        follower,
        leader,
    )
    before = await _counts(db)

    # Act
    result = await run_cli(
        "replay", "--leader", str(leader), "--follower", str(follower),
        "--from", T0.isoformat(), "--to", (T0 + timedelta(seconds=300)).isoformat(), "--json",
        *DIRECT, env=cli_env(),
    )  # fmt: skip
    table = await run_cli(
        "replay", "--leader", str(leader), "--follower", str(follower),
        "--from", T0.isoformat(), "--to", (T0 + timedelta(seconds=300)).isoformat(),
        *DIRECT, env=cli_env(),
    )  # fmt: skip

    # Assert
    assert result.code == 0, result.stderr
    replayed = json.loads(result.stdout)
    assert replayed["settings_source"].startswith("subscription ")
    assert _orders(replayed) == [
        # target = leader position x 10000 / 100000: 0.2, then 0.15
        ("f1", "buy", "0.2", False, None, "0.2"),
        ("f2", "sell", "0.05", True, None, "0.15"),
        # 0.001 ETH x 3000 = 3 USDT, under the 5 USDT minimum
        ("e1", "-", "-", False, "below_min_notional", "0"),
        # equity 20000 from T0+150s: target 2 x 0.2 = 0.4
        ("f3", "buy", "0.25", False, None, "0.4"),
        # through zero: close all, the new short (0.0001 x 0.2) rounds to nothing
        ("f4", "sell", "0.4", True, "rounds_to_zero", "0"),
    ]
    assert replayed["summary"] == {
        "fills": 5,
        "orders": 4,
        "skipped": {"below_min_notional": 1, "rounds_to_zero": 1},
        "positions": {},
    }
    assert table.code == 0, table.stderr
    assert "sell 0.4 BTCUSDT reduce-only" in table.stdout
    assert "orders it would send" in table.stdout
    assert await _counts(db) == before


async def test_hypothetical_replay_for_someone_not_subscribed(db: asyncpg.Connection) -> None:
    leader, _follower = await _history(db)
    before = await _counts(db)

    result = await run_cli(
        "replay", "--leader", str(leader), "--from", T0.isoformat(),
        "--to", (T0 + timedelta(seconds=300)).isoformat(),
        "--equity", "50000", "--mode", "fixed_multiplier", "--multiplier", "0.1", "--json",
        *DIRECT, env=cli_env(),
    )  # fmt: skip
    missing_equity = await run_cli(
        "replay", "--leader", str(leader), "--from", T0.isoformat(), *DIRECT, env=cli_env()
    )
    unknown_leader = await run_cli(
        "replay", "--leader", str(uuid.uuid4()), "--from", "1h", "--equity", "1", *DIRECT,
        env=cli_env(),
    )  # fmt: skip

    assert result.code == 0, result.stderr
    replayed = json.loads(result.stdout)
    assert replayed["settings"]["mode"] == "fixed_multiplier"
    assert _orders(replayed) == [
        ("f1", "buy", "0.1", False, None, "0.1"),  # leader qty x 0.1
        ("f2", "sell", "0.025", True, None, "0.075"),  # the leader closed a quarter
        ("e1", "-", "-", False, "below_min_notional", "0"),
        ("f3", "buy", "0.05", False, None, "0.125"),
        ("f4", "sell", "0.125", True, "rounds_to_zero", "0"),
    ]
    assert missing_equity.code == 2
    assert "equity: required" in missing_equity.stderr
    assert unknown_leader.code == 2
    assert "not found" in unknown_leader.stderr
    assert await _counts(db) == before


async def _subscribe(db: asyncpg.Connection, leader: uuid.UUID, follower: uuid.UUID) -> str:
    """The follower's live subscription to the leader, and an API key for the follower."""
    await db.execute(
        "INSERT INTO subscription (id, follower_id, leader_id, multiplier, status, sizing)"
        " VALUES ($1, $2, $3, 1, 'active', '{}')",
        uuid.uuid4(),
        follower,
        leader,
    )
    key = new_secret(FOLLOWER_KEY_PREFIX)
    await db.execute(
        "UPDATE follower SET api_key_hash = $1 WHERE id = $2", hash_secret(key), follower
    )
    return key


async def test_replay_through_the_api_alone_matches_the_direct_replay(
    db: asyncpg.Connection, server: LiveServer
) -> None:
    # Arrange: the CLI knows only the API's URL and a token, no database
    leader, follower = await _history(db)
    follower_key = await _subscribe(db, leader, follower)
    window = ("--from", T0.isoformat(), "--to", (T0 + timedelta(seconds=300)).isoformat())
    api_only = cli_env(server.base_url, COPYTRADE_DATABASE_URL="", COPYTRADE_REDIS_URL="")
    before = await _counts(db)

    # Act
    direct = await run_cli(
        "replay", "--leader", str(leader), "--follower", str(follower), *window, "--json",
        *DIRECT, env=cli_env(),
    )  # fmt: skip
    as_admin = await run_cli(
        "replay", "--leader", str(leader), "--follower", str(follower), *window, "--json",
        env=api_only,
    )  # fmt: skip
    as_follower = await run_cli(
        "replay", "--leader", str(leader), *window, "--json", "--token", follower_key,
        env=api_only,
    )  # fmt: skip
    what_if = await run_cli(
        "replay", "--leader", str(leader), *window, "--multiplier", "2", "--token", follower_key,
        env=api_only,
    )  # fmt: skip

    # Assert
    assert direct.code == 0, direct.stderr
    assert as_admin.code == 0, as_admin.stderr
    assert as_follower.code == 0, as_follower.stderr
    assert as_admin.json() == direct.json()
    assert as_follower.json() == direct.json()
    assert _orders(as_admin.json())[0] == ("f1", "buy", "0.2", False, None, "0.2")
    assert what_if.code == 0, what_if.stderr
    assert "buy 0.4 BTCUSDT" in what_if.stdout  # twice the multiplier, twice the order
    assert "with overrides" in what_if.stdout
    assert await _counts(db) == before


async def test_a_follower_replays_only_its_own_subscription(
    db: asyncpg.Connection, server: LiveServer
) -> None:
    leader, follower = await _history(db)
    follower_key = await _subscribe(db, leader, follower)
    other_leader = uuid.uuid4()
    await db.execute(
        "INSERT INTO leader (id, name, feed_kind) VALUES ($1, 'O', 'push')", other_leader
    )
    env = cli_env(server.base_url)

    not_subscribed = await run_cli(
        "replay", "--leader", str(other_leader), "--from", "1h", "--token", follower_key, env=env
    )
    someone_else = await run_cli(
        "replay", "--leader", str(leader), "--follower", str(uuid.uuid4()), "--from", "1h",
        "--token", follower_key, env=env,
    )  # fmt: skip
    fixed_equity = await run_cli(
        "replay", "--leader", str(leader), "--from", "1h", "--equity", "1000000",
        "--token", follower_key, env=env,
    )  # fmt: skip

    assert not_subscribed.code == 1
    assert "answered 404: subscription not found" in not_subscribed.stderr
    assert someone_else.code == 1
    assert "answered 404: follower not found" in someone_else.stderr
    assert fixed_equity.code == 1
    assert "answered 403: equity: a follower replays with its own equity" in fixed_equity.stderr


async def test_bad_option_values_get_one_line_errors(server: LiveServer) -> None:
    env = cli_env(server.base_url)

    bad_multiplier = await run_cli(
        "replay", "--leader", str(uuid.uuid4()), "--from", "1h", "--multiplier", "x0.5", env=env
    )
    bad_time = await run_cli("replay", "--leader", str(uuid.uuid4()), "--from", "soon", env=env)
    bad_uuid = await run_cli("replay", "--leader", "L1", "--from", "1h", env=env)
    missing = await run_cli("replay", "--from", "1h", env=env)

    for result in (bad_multiplier, bad_time, bad_uuid, missing):
        assert result.code == 2
        assert result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert result.stderr.startswith("error: ")
        assert "╭" not in result.stderr
        assert "Usage:" not in result.stderr
    assert "--multiplier: 'x0.5' is not a decimal number" in bad_multiplier.stderr
    assert "--from: 'soon': use ISO-8601" in bad_time.stderr
    assert "--leader: Input should be a valid UUID" in bad_uuid.stderr
    assert "--leader: required" in missing.stderr
