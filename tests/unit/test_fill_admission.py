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
