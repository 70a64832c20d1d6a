"""Structured logs of the real service process: every line is JSON, and one fill can be followed
through every stage by its fill_id, each line naming the leader, and the order and follower
where there is one.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import asyncpg
import pytest

from app.executors.protocol.consumer import ReportWriter
from tests.e2e.conftest import ServiceProcess, log_path_for
from tests.e2e.faults import expected_orders, wait_for_orders
from tests.support import Api, eventually, fill_frame, push_socket, send_frame

FILL = "f-trace-1"


def log_lines(service: ServiceProcess) -> list[dict[str, Any]]:
    """Every line of the service's output, each of which must be one JSON object."""
    lines = []
    for number, text in enumerate(service.log_path.read_text().splitlines(), start=1):
        try:
            line = json.loads(text)
        except json.JSONDecodeError:
            pytest.fail(f"log line {number} is not JSON: {text[:300]}")
        assert isinstance(line, dict)
        assert {"event", "level", "timestamp"} <= line.keys(), line
        lines.append(line)
    return lines


async def wait_for_event(service: ServiceProcess, event: str, count: int) -> None:
    await eventually(lambda: service.logged(event) >= count, f"{count} {event} logged", 20)


async def seed(service: ServiceProcess, followers: int) -> tuple[Any, list[Any], list[Any]]:
    api = Api(service.http)
    leader = await api.leader("leader")
    await api.leader_equity(leader["id"], "100000")
    people, subs = [], []
    for n in range(followers):
        follower = await api.follower(f"f{n}")
        await api.follower_equity(follower["id"], "10000")
        subs.append(await api.subscribe(follower["id"], leader["id"]))
        people.append(follower)
    return leader, people, subs


async def test_one_fill_can_be_followed_through_every_stage_by_its_fill_id(
    clean: None, request: pytest.FixtureRequest, redis: Any, db: asyncpg.Connection
) -> None:
    # Arrange: debug level, so the per-order lines are there too.
    service = ServiceProcess(
        log_path_for(request), COPYTRADE_LOG_LEVEL="debug", COPYTRADE_LOG_JSON="true"
    )
    try:
        await service.start()
        await service.wait_ready()
        leader, followers, subs = await seed(service, followers=2)
        follower_ids = [f["id"] for f in followers]
        expected = expected_orders(leader["id"], [FILL], [s["id"] for s in subs])
        follower_of = {
            order_id: f["id"]
            for f, s in zip(followers, subs, strict=True)
            for order_id in expected_orders(leader["id"], [FILL], [s["id"]])
        }

        # Act: the fill comes in on the push socket, its orders reach the streams...
        async with push_socket(service.ws_url, leader["id"], leader["push_token"]) as ws:
            reply = await send_frame(ws, fill_frame(FILL, "BTCUSDT", "buy", "1", "50000"))
        assert reply == {"type": "ack", "fill_id": FILL, "status": "accepted"}
        assert (await wait_for_orders(redis, follower_ids, expected)).keys() == expected
        await wait_for_event(service, "fills_marked_dispatched", 1)
        # ...its orders go through the relay as after a crash before the fill's mark...
        await db.execute("UPDATE leader_fill SET dispatched_at = NULL WHERE fill_id = $1", FILL)
        await wait_for_event(service, "order_relayed", len(expected))
        # ...and an executor reports on each order (over the report stream, as executors do).
        writer = ReportWriter(redis)
        for order_id in expected:
            await writer.report(follower_of[order_id], order_id, "accepted")
        await wait_for_event(service, "order_report_applied", len(expected))
        await service.stop()

        # Assert
        lines = log_lines(service)
        traced = [line for line in lines if line.get("fill_id") == FILL]
        stages: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for line in traced:
            assert line["leader_id"] == leader["id"], line
            stages[line["event"]].append(line)
        per_fill = ("fill_received", "fill_committed", "orders_enqueued")
        per_order = ("order_committed", "order_enqueued", "order_report_applied")
        for event in per_fill:
            assert len(stages[event]) == 1, (event, stages[event])
        assert stages["fill_committed"][0]["orders"] == len(expected)
        assert stages["orders_enqueued"][0]["orders"] == len(expected)
        for event in per_order:
            assert {line["order_id"] for line in stages[event]} == expected, event
            for line in stages[event]:
                assert line["follower_id"] == follower_of[line["order_id"]], line
        # Every order of the unmarked fill is relayed (the enqueue dedupes the resend).
        relayed_lines = [(r["order_id"], r["follower_id"]) for r in stages["order_relayed"]]
        assert {oid for oid, _ in relayed_lines} == expected
        assert all(follower_of[oid] == fid for oid, fid in relayed_lines)
        # In pipeline order, by timestamp.
        first = {event: min(line["timestamp"] for line in found) for event, found in stages.items()}
        order = ["fill_received", "fill_committed", "order_committed", "orders_enqueued"]
        assert sorted(order, key=first.__getitem__) == order
        assert first["order_relayed"] > first["orders_enqueued"]
        # The mark is batched across fills: it carries the count, not the ids.
        assert any(line["event"] == "fills_marked_dispatched" for line in lines)
        # Debug lines carry ids, never secrets.
        text = service.log_path.read_text()
        for secret in (leader["push_token"], *(f["api_key"] for f in followers)):
            assert secret not in text
    finally:
        await service.close()


async def test_at_info_a_fan_out_logs_per_fill_not_per_order(
    clean: None, request: pytest.FixtureRequest, redis: Any
) -> None:
    # Arrange: the default level (info) and a fan-out to 30 followers.
    service = ServiceProcess(log_path_for(request))
    try:
        await service.start()
        await service.wait_ready()
        leader, followers, subs = await seed(service, followers=30)
        expected = expected_orders(leader["id"], [FILL], [s["id"] for s in subs])

        # Act
        async with push_socket(service.ws_url, leader["id"], leader["push_token"]) as ws:
            await send_frame(ws, fill_frame(FILL, "BTCUSDT", "buy", "1", "50000"))
        await wait_for_orders(redis, [f["id"] for f in followers], expected)
        await service.stop()

        # Assert: two lines for the fill, whatever its fan-out, with the counts.
        traced = [line for line in log_lines(service) if line.get("fill_id") == FILL]
        assert [line["event"] for line in traced] == ["fill_committed", "orders_enqueued"]
        assert all(line["level"] == "info" for line in traced)
        assert [line["orders"] for line in traced] == [30, 30]
        assert all(line["leader_id"] == leader["id"] for line in traced)
    finally:
        await service.close()
