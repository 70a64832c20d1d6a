"""The pipeline sizes at most ``fill_concurrency`` fills at once, in arrival order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest

from app.domain.model import Fill, Side
from app.pipeline import Pipeline
from app.sizing.engine import FillOutcome


class RecordingEngine:
    """Stands in for the sizing engine: takes a while, and records how many run at once."""

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.started: list[str] = []

    async def process(self, fill: Fill) -> FillOutcome:
        self.started.append(fill.fill_id)
        self.running += 1
        self.most = max(self.most, self.running)
        await asyncio.sleep(0.01)
        self.running -= 1
        return FillOutcome(duplicate=True)  # nothing to dispatch


def fill(n: int) -> Fill:
    now = datetime.now(UTC)
    return Fill(uuid4(), f"f-{n}", "BTCUSDT", Side.BUY, Decimal(1), Decimal(100), now, now)


@pytest.mark.parametrize("slots", [1, 2, 3])
async def test_no_more_fills_are_sized_at_once_than_the_slots(slots: int) -> None:
    # Arrange: ten leaders' fills arrive together.
    engine = RecordingEngine()
    none: Any = None
    pipeline = Pipeline(engine, none, none, none, none, 1.0, fill_concurrency=slots)  # type: ignore[arg-type]
    fills = [fill(n) for n in range(10)]

    # Act
    results = await asyncio.gather(*(pipeline.handle_fill(f) for f in fills))

    # Assert: all handled, never more than ``slots`` at once, taken in arrival order.
    assert [r.status for r in results] == ["duplicate"] * 10
    assert engine.most == slots
    assert engine.started == [f.fill_id for f in fills]


class StuckLeaderEngine(RecordingEngine):
    """One leader's fills hang (a row lock held elsewhere) until released."""

    def __init__(self, stuck: object) -> None:
        super().__init__()
        self.stuck = stuck
        self.release = asyncio.Event()
        self.hanging = asyncio.Event()

    async def process(self, fill: Fill) -> FillOutcome:
        if fill.leader_id == self.stuck:
            self.started.append(fill.fill_id)
            self.hanging.set()
            await self.release.wait()
            return FillOutcome(duplicate=True)
        return await super().process(fill)


async def test_a_stuck_leader_holds_one_slot_and_other_leaders_go_on() -> None:
    # Arrange: two slots; the stuck leader has three fills in flight before the others come.
    stuck = uuid4()
    engine = StuckLeaderEngine(stuck)
    none: Any = None
    pipeline = Pipeline(engine, none, none, none, none, 1.0, fill_concurrency=2)  # type: ignore[arg-type]
    now = datetime.now(UTC)
    stuck_fills = [
        Fill(stuck, f"s-{n}", "BTCUSDT", Side.BUY, Decimal(1), Decimal(100), now, now)
        for n in range(3)
    ]
    stuck_tasks = [asyncio.create_task(pipeline.handle_fill(f)) for f in stuck_fills]
    await engine.hanging.wait()

    # Act: other leaders' fills, while the stuck one still hangs.
    others = await asyncio.wait_for(
        asyncio.gather(*(pipeline.handle_fill(fill(n)) for n in range(5))), timeout=30
    )

    # Assert: all handled; the stuck leader's later fills waited behind its first, no slot.
    assert [r.status for r in others] == ["duplicate"] * 5
    assert engine.started[0] == "s-0"
    assert "s-1" not in engine.started
    engine.release.set()
    await asyncio.gather(*stuck_tasks)
    assert [f for f in engine.started if f.startswith("s-")] == ["s-0", "s-1", "s-2"]
