"""A feed socket's subscriber: messages in order, a waiting reader woken, an end that holds."""

from __future__ import annotations

import asyncio

from app.feed.hub import Subscriber


async def test_messages_come_out_in_order_and_a_reader_waits_for_the_next() -> None:
    # Arrange
    sub = Subscriber()
    sub.offer("a")
    sub.offer("b")

    # Act
    first, second = await sub.next(), await sub.next()
    waiting = asyncio.create_task(sub.next())
    await asyncio.sleep(0)
    still_waiting = not waiting.done()
    sub.offer("c")
    third = await asyncio.wait_for(waiting, 1.0)

    # Assert
    assert (first, second, third) == ("a", "b", "c")
    assert still_waiting


async def test_end_wakes_a_waiting_reader_and_nothing_is_delivered_after_it() -> None:
    # Arrange: one reader waiting, then a message queued right before the end (a revocation
    # must not let queued messages through).
    sub = Subscriber()
    waiting = asyncio.create_task(sub.next())
    await asyncio.sleep(0)

    # Act
    sub.end()
    woken = await asyncio.wait_for(waiting, 1.0)
    sub.offer("late")
    after = await sub.next()

    # Assert
    assert woken is None
    assert after is None


async def test_a_subscriber_past_its_bytes_drops_its_queue_and_ends() -> None:
    # Arrange: room for five bytes.
    sub = Subscriber(limit_bytes=5)
    sub.offer("ab")
    sub.offer("cd")
    first = await sub.next()

    # Act: "efg" fits beside "cd" (5 bytes); "h" does not.
    sub.offer("efg")
    fitted = sub.queued_bytes
    sub.offer("h")

    # Assert: what was queued is let go at once, and the stream ends.
    assert first == "ab"
    assert fitted == 5
    assert sub.overflowed
    assert sub.queued_bytes == 0
    assert await sub.next() is None
