"""The supervised loop stops even when a body turns its cancellation into an error."""

from __future__ import annotations

import asyncio

from app.loops import Backoff, SupervisedTask


async def test_stop_ends_a_loop_whose_body_swallows_cancellation() -> None:
    # Arrange: a body that, like a client library racing its own timeout, reports the
    # cancellation as an ordinary error; the supervisor would retry it forever.
    runs = 0

    async def body(backoff: Backoff) -> None:
        nonlocal runs
        runs += 1
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise TimeoutError("read timed out") from None

    task = SupervisedTask("swallower", body, Backoff(0.01, 0.02))
    task.start()
    await asyncio.sleep(0.05)

    # Act
    await asyncio.wait_for(task.stop(), timeout=10)

    # Assert
    assert not task.alive
    assert runs >= 1


async def test_a_body_that_returns_is_restarted_after_a_delay_until_stopped() -> None:
    # Arrange
    runs = 0

    async def body(backoff: Backoff) -> None:
        nonlocal runs
        runs += 1

    task = SupervisedTask("returner", body, Backoff(0.05, 0.05))

    # Act
    task.start()
    await asyncio.sleep(0.3)
    await task.stop()

    # Assert: restarted, but paced by the backoff (not thousands of hot-loop turns).
    assert 2 <= runs <= 20
    assert not task.alive
