"""The copytrade command for real: a subprocess against the live server, Postgres and Redis."""

from __future__ import annotations

import json
import re
import signal
import uuid
from decimal import Decimal
from typing import Any

import asyncpg

from tests.conftest import TEST_REDIS_URL
from tests.integration.cli_runner import UUID_RE, cli_env, read_until, run_cli, start_cli
from tests.support import (
    Api,
    LiveServer,
    feed_subscribed,
    fill_frame,
    push_socket,
    read_stream,
    send_frame,
)

PUSH_TOKEN_RE = re.compile(r"ctp_[A-Za-z0-9_-]+")
API_KEY_RE = re.compile(r"ctf_[A-Za-z0-9_-]+")


async def test_add_list_and_subscribe_round_trip(
    server: LiveServer, db: asyncpg.Connection
) -> None:
    env = cli_env(server.base_url)

    # Act: a leader as JSON, a leader and a follower as tables, a subscription
    alice = await run_cli("leader", "add", "Alice", "--equity", "100000", "--json", env=env)
    bob = await run_cli("leader", "add", "Bob", env=env)
    carol = await run_cli("follower", "add", "Carol", "--equity", "10000.50", env=env)
    assert (alice.code, bob.code, carol.code) == (0, 0, 0), (alice, bob, carol)
    alice_json = alice.json()
    bob_id = UUID_RE.findall(bob.stdout)[0]
    carol_id = UUID_RE.findall(carol.stdout)[0]
    sub = await run_cli(
        "subscribe",
        "--follower", carol_id,
        "--leader", alice_json["id"],
        "--multiplier", "0.5",
        "--max-order-notional", "5000",
        "--json",
        env=env,
    )  # fmt: skip
    leaders = await run_cli("leader", "list", env=env)
    followers = await run_cli("follower", "list", "--subscriptions", env=env)
    leaders_json = await run_cli("leader", "list", "--json", env=env)

    # Assert: what the service stored
    assert alice_json["name"] == "Alice"
    assert alice_json["feed"] == {"kind": "push", "url": None, "config": None}
    assert alice_json["push_token"].startswith("ctp_")
    assert alice_json["equity"]["equity"] == "100000"
    assert sub.code == 0, sub
    assert sub.json()["multiplier"] == "0.5"
    assert sub.json()["sizing"] == {"max_order_notional": "5000"}
    row = await db.fetchrow(
        "SELECT multiplier, status, sizing FROM subscription WHERE follower_id = $1",
        uuid.UUID(carol_id),
    )
    assert row["multiplier"] == Decimal("0.5")
    assert row["status"] == "active"
    equity = await db.fetchval(
        "SELECT equity FROM equity_snapshot WHERE follower_id = $1", uuid.UUID(carol_id)
    )
    assert equity == Decimal("10000.50")  # sent as written, never through float
    # The secrets are printed once, clearly, and they are the real ones.
    assert "Push token: shown once" in bob.stdout
    assert "API key: shown once" in carol.stdout
    bob_token = PUSH_TOKEN_RE.findall(bob.stdout)[0]
    async with push_socket(server.ws_url, bob_id, bob_token) as ws:
        ack = await send_frame(ws, fill_frame("b-1", "BTCUSDT", "buy", "1", "50000"))
    assert ack["status"] == "accepted"
    carol_key = API_KEY_RE.findall(carol.stdout)[0]
    mine = await Api(server.http).call("GET", f"/v1/followers/{carol_id}", 200, token=carol_key)
    assert mine["name"] == "Carol"
    # Lists: every account with its whole id
    assert leaders.code == 0
    assert "Leaders (2)" in leaders.stdout
    assert alice_json["id"] in leaders.stdout
    assert bob_id in leaders.stdout
    assert {leader["name"] for leader in leaders_json.json()} == {"Alice", "Bob"}
    assert followers.code == 0
    assert carol_id in followers.stdout
    assert f"{alice_json['id']} x0.5" in followers.stdout


async def test_api_errors_are_readable_and_exit_non_zero(server: LiveServer) -> None:
    env = cli_env(server.base_url)
    api = Api(server.http)
    leader = await api.leader()
    follower = await api.follower()
    await api.subscribe(follower["id"], leader["id"])

    empty_name = await run_cli("leader", "add", "", env=env)
    bad_url = await run_cli("leader", "add", "x", "--url", "http://example.com", env=env)
    unknown_leader = await run_cli(
        "subscribe", "--follower", follower["id"], "--leader", str(uuid.uuid4()), env=env
    )
    twice = await run_cli(
        "subscribe", "--follower", follower["id"], "--leader", leader["id"], env=env
    )
    bad_token = await run_cli("leader", "list", "--token", "not-the-admin-token-at-all", env=env)
    not_decimal = await run_cli("follower", "add", "x", "--equity", "1e", env=env)
    no_token = await run_cli(
        "leader", "list", env=cli_env(server.base_url, COPYTRADE_ADMIN_TOKEN="")
    )
    no_server = await run_cli("leader", "list", env=cli_env("http://127.0.0.1:9"))

    assert empty_name.code == 1
    assert "POST /v1/leaders answered 422: name:" in empty_name.stderr
    assert bad_url.code == 1
    assert "feed.generic.url: URL scheme should be" in bad_url.stderr
    assert unknown_leader.code == 1
    assert "answered 404: leader_id: leader not found" in unknown_leader.stderr
    assert twice.code == 1
    assert "409: leader_id: already subscribed" in twice.stderr
    assert bad_token.code == 1
    assert "answered 401" in bad_token.stderr
    assert not_decimal.code == 2
    assert "is not a decimal number" in not_decimal.stderr
    assert no_token.code == 2
    assert "no token" in no_token.stderr
    assert no_server.code == 1
    assert "cannot reach the API at http://127.0.0.1:9" in no_server.stderr
    # Nothing was created by the failed calls.
    assert [lead["id"] for lead in await api.call("GET", "/v1/leaders", 200)] == [leader["id"]]


async def _subscribed(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    leader = await api.leader()
    follower = await api.follower()
    await api.leader_equity(leader["id"], "100000")
    await api.follower_equity(follower["id"], "10000")
    await api.instrument("BTCUSDT", qty_step="0.001", min_qty="0.001", min_notional="5")
    await api.subscribe(follower["id"], leader["id"])
    return leader, follower


async def test_orders_tail_follows_the_queue_live_and_stops_on_ctrl_c(
    server: LiveServer, redis: Any
) -> None:
    # Arrange: an order already in the stream, which tail (from now) must not show
    leader, follower = await _subscribed(Api(server.http))
    async with push_socket(server.ws_url, leader["id"], leader["push_token"]) as ws:
        await send_frame(ws, fill_frame("old-1", "BTCUSDT", "buy", "1", "50000"))
    tail = await start_cli(
        "orders", "tail", "--follower", follower["id"], "--redis-url", TEST_REDIS_URL,
        env=cli_env(),
    )  # fmt: skip
    assert tail.stdout is not None
    assert tail.stderr is not None
    try:
        await read_until(tail.stderr, "Following copytrade:orders:")

        # Act
        async with push_socket(server.ws_url, leader["id"], leader["push_token"]) as ws:
            ack = await send_frame(ws, fill_frame("new-1", "BTCUSDT", "buy", "2", "50000"))
        shown = await read_until(tail.stdout, "new-1")
        tail.send_signal(signal.SIGINT)
        _, rest = await tail.communicate()
    finally:
        if tail.returncode is None:
            tail.kill()
            await tail.wait()

    # Assert
    assert ack["status"] == "accepted"
    stream = await read_stream(redis, follower["id"])
    new = next(o for o in stream if o["leader_fill_id"] == "new-1")
    row = next(line for line in shown.splitlines() if "new-1" in line)
    assert row.split()[1:6] == [new["order_id"], "BTCUSDT", "buy", "0.2", "market"]
    assert "old-1" not in shown
    assert tail.returncode == 0
    assert "stopped" in rest.decode()


async def test_orders_tail_from_start_prints_the_stream_as_json(
    server: LiveServer, redis: Any
) -> None:
    leader, follower = await _subscribed(Api(server.http))
    async with push_socket(server.ws_url, leader["id"], leader["push_token"]) as ws:
        await send_frame(ws, fill_frame("f-1", "BTCUSDT", "buy", "1", "50000"))
        await send_frame(ws, fill_frame("f-2", "BTCUSDT", "sell", "1", "50000"))

    result = await run_cli(
        "orders", "tail", "--follower", follower["id"], "--from-start", "--count", "2", "--json",
        "--redis-url", TEST_REDIS_URL, env=cli_env(),
    )  # fmt: skip

    assert result.code == 0, result
    printed = [line for line in result.stdout.splitlines() if line.strip()]
    stream = await redis.xrange(f"copytrade:orders:{{{follower['id']}}}")
    assert printed == [fields["order"] for _, fields in stream]
    assert "2 order(s)" in result.stderr


def api_only(server: LiveServer) -> dict[str, str]:
    """The CLI's environment with the API's URL and no database, Redis or admin token."""
    return cli_env(
        server.base_url, COPYTRADE_DATABASE_URL="", COPYTRADE_REDIS_URL="", COPYTRADE_ADMIN_TOKEN=""
    )


async def test_orders_tail_through_the_feed_with_only_a_follower_key(
    server: LiveServer, redis: Any
) -> None:
    # Arrange: an order from before, which tail (from now) must not show
    leader, follower = await _subscribed(Api(server.http))
    async with push_socket(server.ws_url, leader["id"], leader["push_token"]) as ws:
        await send_frame(ws, fill_frame("old-1", "BTCUSDT", "buy", "1", "50000"))
    tail = await start_cli(
        "orders", "tail", "--follower", follower["id"], "--token", follower["api_key"],
        env=api_only(server),
    )  # fmt: skip
    assert tail.stdout is not None
    assert tail.stderr is not None
    try:
        await read_until(tail.stderr, "Following the order feed")
        await feed_subscribed(redis, follower["id"])

        # Act: an order sent, then one skipped (0.0001 rounds to nothing in 0.001 lots)
        async with push_socket(server.ws_url, leader["id"], leader["push_token"]) as ws:
            await send_frame(ws, fill_frame("new-1", "BTCUSDT", "buy", "2", "50000"))
            await send_frame(ws, fill_frame("tiny-1", "BTCUSDT", "buy", "0.001", "50000"))
        shown = await read_until(tail.stdout, "tiny-1")
        tail.send_signal(signal.SIGINT)
        _, rest = await tail.communicate()
    finally:
        if tail.returncode is None:
            tail.kill()
            await tail.wait()

    # Assert
    orders = await Api(server.http).call("GET", f"/v1/followers/{follower['id']}/orders", 200)
    by_fill = {o["leader_fill_id"]: o for o in orders}
    sent = next(line for line in shown.splitlines() if "new-1" in line)
    skipped = next(line for line in shown.splitlines() if "tiny-1" in line)
    assert sent.split()[1:6] == [by_fill["new-1"]["order_id"], "BTCUSDT", "buy", "0.2", "market"]
    assert sent.split()[-1] == "dispatched"
    assert skipped.split()[1:5] == [by_fill["tiny-1"]["order_id"], "BTCUSDT", "\u2014", "\u2014"]
    assert skipped.rstrip().endswith("skipped: rounds_to_zero")
    assert "old-1" not in shown
    assert tail.returncode == 0
    assert "stopped" in rest.decode()


async def test_orders_tail_from_start_through_the_api_as_json(server: LiveServer) -> None:
    leader, follower = await _subscribed(Api(server.http))
    async with push_socket(server.ws_url, leader["id"], leader["push_token"]) as ws:
        await send_frame(ws, fill_frame("f-1", "BTCUSDT", "buy", "1", "50000"))
        await send_frame(ws, fill_frame("f-2", "BTCUSDT", "sell", "1", "50000"))

    result = await run_cli(
        "orders", "tail", "--follower", follower["id"], "--from-start", "--count", "2", "--json",
        "--token", follower["api_key"], env=api_only(server),
    )  # fmt: skip
    refused = await run_cli(
        "orders", "tail", "--follower", follower["id"], "--token", "ctf_not-a-key-at-all",
        env=api_only(server),
    )  # fmt: skip
    no_token = await run_cli("orders", "tail", "--follower", follower["id"], env=api_only(server))

    assert result.code == 0, result
    printed = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert [o["leader_fill_id"] for o in printed] == ["f-1", "f-2"]  # oldest first
    assert [o["status"] for o in printed] == ["dispatched", "dispatched"]
    assert "2 order(s)" in result.stderr
    assert refused.code == 1
    assert refused.stderr.startswith(f"error: GET /v1/followers/{follower['id']} answered 401")
    assert no_token.code == 2
    assert "no token" in no_token.stderr
