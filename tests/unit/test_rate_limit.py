"""The token bucket behind the REST rate limit: burst, refill, Retry-After, bounded memory."""

from __future__ import annotations

import pytest

from app.api.limits import TokenBuckets


def test_burst_then_wait_for_the_next_token() -> None:
    # Arrange
    buckets = TokenBuckets(rate=2.0, burst=3)

    # Act
    waits = [buckets.take("k", now=10.0) for _ in range(4)]

    # Assert
    assert waits == [0.0, 0.0, 0.0, pytest.approx(0.5)]


def test_tokens_refill_at_the_rate_up_to_the_burst() -> None:
    # Arrange
    buckets = TokenBuckets(rate=2.0, burst=3)
    for _ in range(3):
        buckets.take("k", now=0.0)

    # Act
    after_half_second = buckets.take("k", now=0.5)
    after_an_hour = [buckets.take("k", now=3600.0) for _ in range(4)]

    # Assert
    assert after_half_second == 0.0
    assert after_an_hour[:3] == [0.0, 0.0, 0.0]
    assert after_an_hour[3] > 0


def test_keys_have_their_own_buckets() -> None:
    # Arrange
    buckets = TokenBuckets(rate=1.0, burst=1)
    buckets.take("a", now=0.0)

    # Act
    a_again = buckets.take("a", now=0.0)
    b_first = buckets.take("b", now=0.0)

    # Assert
    assert a_again == pytest.approx(1.0)
    assert b_first == 0.0


def test_least_recently_seen_keys_are_forgotten_first() -> None:
    # Arrange
    buckets = TokenBuckets(rate=1.0, burst=1, max_keys=2)
    buckets.take("old", now=0.0)
    buckets.take("mid", now=0.0)

    # Act
    buckets.take("new", now=0.0)
    old_again = buckets.take("old", now=0.0)
    new_again = buckets.take("new", now=0.0)

    # Assert: "old" was evicted and starts with a full bucket; "new" was kept
    assert old_again == 0.0
    assert new_again == pytest.approx(1.0)
