"""The supervised loop stops even when a body turns its cancellation into an error."""

from __future__ import annotations

import asyncio

from app.loops import Backoff, SupervisedTask
from tests.support import eventually


class CountingBackoff(Backoff):
    """A backoff that counts the delays asked of it."""

    def __init__(self, initial: float, maximum: float) -> None:
        super().__init__(initial, maximum)
        self.delays = 0

    def next_delay(self) -> float:
        self.delays += 1
        return super().next_delay()


async def test_stop_ends_a_loop_whose_body_swallows_cancellation() -> None:
    # Arrange: a body that, like a client library racing its own timeout, reports the
    # cancellation as an ordinary error; the supervisor would retry it forever.
    started = asyncio.Event()

    async def body(backoff: Backoff) -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise TimeoutError("read timed out") from None

    task = SupervisedTask("swallower", body, Backoff(0.01, 0.02))
    task.start()
    await started.wait()

    # Act
    await task.stop()

    # Assert
    assert not task.alive


async def test_a_body_that_returns_is_restarted_after_a_delay_until_stopped() -> None:
    # Arrange
    runs = 0

    async def body(backoff: Backoff) -> None:
        nonlocal runs
        runs += 1

    backoff = CountingBackoff(0.001, 0.001)
    task = SupervisedTask("returner", body, backoff)

    # Act
    task.start()
    await eventually(lambda: runs >= 3, "three runs")
    await task.stop()

    # Assert: restarted, each time after a backoff delay (never in a hot loop).
    assert runs >= 3
    assert backoff.delays >= runs - 1
    assert not task.alive
