"""Position-aware sizing end to end: a scripted leader sequence against the real service process.

Opens, adds, a fill too small to copy, partial closes, a reversal through zero and a full close,
checked order by order (side, qty, reduce_only) in each follower's Redis stream, for ``target``
mode (the default) and ``per_fill`` mode, with two followers of different equity and a lot step.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from tests.e2e.conftest import ServiceProcess
from tests.support import Api, fill_frame, push_socket, read_stream, send_frame

STEP = Decimal("0.001")
# Leader equity 100000. A: 10000 (ratio 0.1), B: 33333 (ratio 0.33333). BTCUSDT step 0.001.
EQUITIES = {"A": "10000", "B": "33333"}

# (fill_id, side, qty, price) -> leader position after the fill
FILLS: list[tuple[str, str, str, str]] = [
    ("f-1", "buy", "1", "50000"),  # open: 1
    ("f-2", "buy", "2", "50100"),  # add: 3
    ("f-3", "buy", "0.005", "50200"),  # add, A's share 0.0005 is under one step: 3.005
    ("f-4", "buy", "0.005", "50200"),  # add again, A catches up in target mode: 3.01
    ("f-5", "sell", "1.51", "50300"),  # partial close: 1.5
    ("f-6", "sell", "2.5", "50000"),  # reversal through zero: -1
    ("f-7", "sell", "0.5", "49900"),  # add to the short: -1.5
    ("f-8", "buy", "0.7", "49800"),  # partial close of the short: -0.8
    ("f-9", "buy", "0.8", "49700"),  # full close: 0
]
CHECKPOINT = "f-4"  # positions are read after this fill, and at the end

Order = tuple[str, str, str, bool]  # (leader_fill_id, side, qty, reduce_only)

# target: each order is (target - position) rounded to the step the conservative way (the
# default): openings down, reductions up, so the follower never ends above its target.
TARGET: dict[str, list[Order]] = {
    "A": [
        ("f-1", "buy", "0.1", False),
        ("f-2", "buy", "0.2", False),
        # f-3: target 0.3005, 0.0005 to buy rounds to zero: skipped.
        ("f-4", "buy", "0.001", False),  # target 0.301: the residue is caught up
        ("f-5", "sell", "0.151", True),  # target 0.15
        ("f-6", "sell", "0.15", True),  # the reversal closes everything...
        ("f-6", "sell", "0.1", False),  # ...then opens the short: target -0.1
        ("f-7", "sell", "0.05", False),  # target -0.15
        ("f-8", "buy", "0.07", True),  # target -0.08
        ("f-9", "buy", "0.08", True),  # flat
    ],
    "B": [
        ("f-1", "buy", "0.333", False),  # target 0.33333
        ("f-2", "buy", "0.666", False),  # target 0.99999
        ("f-3", "buy", "0.002", False),  # target 1.00165665
        ("f-4", "buy", "0.002", False),  # target 1.0033233
        ("f-5", "sell", "0.504", True),  # target 0.499995: 0.503005 rounds up, to 0.499
        ("f-6", "sell", "0.499", True),
        ("f-6", "sell", "0.333", False),  # target -0.33333
        ("f-7", "sell", "0.166", False),  # target -0.499995
        ("f-8", "buy", "0.233", True),  # target -0.266664: 0.232336 rounds up, to -0.266
        ("f-9", "buy", "0.266", True),  # flat
    ],
}
# per_fill: openings are the fill x ratio, rounded down; reductions the leader's fraction of
# the position, rounded up.
PER_FILL: dict[str, list[Order]] = {
    "A": [
        ("f-1", "buy", "0.1", False),
        ("f-2", "buy", "0.2", False),
        # f-3 and f-4: 0.0005 each rounds to zero and is never caught up.
        ("f-5", "sell", "0.151", True),  # 0.3 x 1.51 / 3.01 = 0.15049..
        ("f-6", "sell", "0.149", True),
        ("f-6", "sell", "0.1", False),  # |leader after| 1 x 0.1
        ("f-7", "sell", "0.05", False),
        ("f-8", "buy", "0.07", True),  # 0.15 x 0.7 / 1.5
        ("f-9", "buy", "0.08", True),
    ],
    "B": [
        ("f-1", "buy", "0.333", False),
        ("f-2", "buy", "0.666", False),
        ("f-3", "buy", "0.001", False),  # 0.00166665
        ("f-4", "buy", "0.001", False),
        ("f-5", "sell", "0.503", True),  # 1.001 x 1.51 / 3.01 = 0.50216..
        ("f-6", "sell", "0.498", True),
        ("f-6", "sell", "0.333", False),
        ("f-7", "sell", "0.166", False),
        ("f-8", "buy", "0.233", True),  # 0.499 x 0.7 / 1.5 = 0.23286..
        ("f-9", "buy", "0.266", True),
    ],
}
# (position, target) from GET positions after the checkpoint fill (leader position 3.01).
AT_CHECKPOINT: dict[str, dict[str, tuple[str, str]]] = {
    "target": {"A": ("0.301", "0.301"), "B": ("1.003", "1.0033233")},
    "per_fill": {"A": ("0.3", "0.301"), "B": ("1.001", "1.0033233")},
}
# Fill ids whose order is skipped (rounds_to_zero), per mode and follower.
SKIPPED: dict[str, dict[str, list[str]]] = {
    "target": {"A": ["f-3"], "B": []},
    "per_fill": {"A": ["f-3", "f-4"], "B": []},
}


async def setup(api: Api, mode: str) -> dict[str, Any]:
    leader = await api.leader("lead")
    await api.leader_equity(leader["id"], "100000")
    await api.instrument("BTCUSDT", qty_step=str(STEP), min_qty=str(STEP), min_notional="5")
    accounts: dict[str, Any] = {"leader": leader}
    body: dict[str, Any] = {"leader_id": leader["id"]}
    if mode != "target":
        body["sizing"] = {"mode": mode}
    for name, equity in EQUITIES.items():
        follower = await api.follower(name)
        await api.follower_equity(follower["id"], equity)
        await api.call("POST", f"/v1/followers/{follower['id']}/subscriptions", 201, json=body)
        accounts[name] = follower
    return accounts


async def send(ws: ClientConnection, fill: tuple[str, str, str, str]) -> None:
    fill_id, side, qty, price = fill
    ack = await send_frame(ws, fill_frame(fill_id, "BTCUSDT", side, qty, price))
    assert ack == {"type": "ack", "fill_id": fill_id, "status": "accepted"}


async def position_row(api: Api, follower: dict[str, Any]) -> dict[str, Any]:
    rows = await api.call(
        "GET", f"/v1/followers/{follower['id']}/positions", 200, token=follower["api_key"]
    )
    assert len(rows) == 1, rows
    row: dict[str, Any] = rows[0]
    assert row["symbol"] == "BTCUSDT"
    return row


def signed(order: dict[str, Any]) -> Decimal:
    qty = Decimal(order["qty"])
    return qty if order["side"] == "buy" else -qty


@pytest.mark.parametrize(("mode", "expected"), [("target", TARGET), ("per_fill", PER_FILL)])
async def test_scripted_sequence_order_by_order(
    service: ServiceProcess, redis: Any, mode: str, expected: dict[str, list[Order]]
) -> None:
    # Arrange
    api = Api(service.http)
    accounts = await setup(api, mode)
    leader = accounts["leader"]
    checkpoint: dict[str, dict[str, Any]] = {}

    # Act
    async with push_socket(service.ws_url, leader["id"], leader["push_token"]) as ws:
        for fill in FILLS:
            await send(ws, fill)
            if fill[0] == CHECKPOINT:
                for name in EQUITIES:
                    checkpoint[name] = await position_row(api, accounts[name])

    # Assert
    for name in EQUITIES:
        follower = accounts[name]
        stream = await read_stream(redis, follower["id"])
        got = [(o["leader_fill_id"], o["side"], o["qty"], o["reduce_only"]) for o in stream]
        assert got == expected[name], (mode, name)
        assert {o["type"] for o in stream} == {"market"}
        explained = [await api.call("GET", o["explanation"], 200) for o in stream]
        assert {o["sizing"]["mode"] for o in explained} == {mode}
        # The follower's orders add up to flat, as the leader's fills do.
        assert sum((signed(o) for o in stream), Decimal(0)) == 0

        position, target = AT_CHECKPOINT[mode][name]
        assert checkpoint[name]["leader_position"] == "3.01"
        assert (checkpoint[name]["position"], checkpoint[name]["target"]) == (position, target)

        final = await position_row(api, follower)
        assert (final["position"], final["leader_position"], final["target"]) == ("0", "0", "0")

        orders = await api.settled_orders(follower["id"])
        skipped = sorted(o["leader_fill_id"] for o in orders if o["status"] == "skipped")
        assert skipped == SKIPPED[mode][name], (mode, name)
        assert {o["skip_reason"] for o in orders if o["status"] == "skipped"} <= {"rounds_to_zero"}
        assert len(orders) == len(stream) + len(skipped)
    leader_positions = await api.call("GET", f"/v1/leaders/{leader['id']}/positions", 200)
    assert leader_positions == [{"symbol": "BTCUSDT", "qty": "0"}]


async def test_target_mode_stays_within_one_step_and_catches_up_the_residue(
    service: ServiceProcess, redis: Any
) -> None:
    """After every fill the follower's tracked position is within one step of its target and
    on the leader's side; the share of a fill too small to copy is sent with the next fill."""
    # Arrange
    api = Api(service.http)
    accounts = await setup(api, "target")
    leader = accounts["leader"]
    rows: list[dict[str, Any]] = []

    # Act
    async with push_socket(service.ws_url, leader["id"], leader["push_token"]) as ws:
        for fill in FILLS:
            await send(ws, fill)
            rows.append(await position_row(api, accounts["A"]))
            rows.append(await position_row(api, accounts["B"]))

    # Assert
    for row in rows:
        position, target = Decimal(row["position"]), Decimal(row["target"])
        leader_position = Decimal(row["leader_position"])
        assert abs(target - position) < STEP, row
        assert position * leader_position >= 0, row
        assert (position == 0) == (leader_position == 0), row
    orders = {o["leader_fill_id"]: o for o in await api.settled_orders(accounts["A"]["id"])}
    skipped, catch_up = orders["f-3"], orders["f-4"]
    assert (skipped["status"], skipped["skip_reason"], skipped["qty"]) == (
        "skipped",
        "rounds_to_zero",
        "0",
    )
    assert skipped["sizing"]["target"] == "0.3005"
    assert skipped["sizing"]["raw_qty"] == "0.0005"
    assert skipped["sizing"]["residue"] == "0.0005"
    assert (catch_up["status"], catch_up["qty"]) == ("dispatched", "0.001")
    assert catch_up["sizing"]["follower_position_before"] == "0.3"
    assert catch_up["sizing"]["raw_qty"] == "0.001"
    assert catch_up["sizing"]["residue"] == "0"
    assert [o["leader_fill_id"] for o in await read_stream(redis, accounts["A"]["id"])][2] == "f-4"
