"""Unit tests of app.sizing.chunks.chunk_bounds: how a wide fill is cut into chunks (pure)."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from app.sizing.chunks import chunk_bounds


def sizes(bounds: list[tuple[int, int]]) -> list[int]:
    return [end - start for start, end in bounds]


def test_a_thousand_start_small_grow_and_end_with_what_is_left() -> None:
    # Act
    bounds = chunk_bounds(1000, 250, 1000)

    # Assert
    assert bounds == [(0, 250), (250, 750), (750, 1000)]


def test_ten_thousand_grow_to_the_largest_chunk() -> None:
    # Act
    bounds = chunk_bounds(10_000, 250, 1000)

    # Assert
    assert sizes(bounds) == [250, 500] + [1000] * 9 + [250]


def test_a_first_chunk_above_the_largest_is_the_largest() -> None:
    # Act
    bounds = chunk_bounds(5, 250, 2)

    # Assert
    assert bounds == [(0, 2), (2, 4), (4, 5)]


def test_nothing_to_cut() -> None:
    # Act / Assert
    assert chunk_bounds(0, 250, 1000) == []


@given(
    st.integers(min_value=0, max_value=50_000),
    st.integers(min_value=1, max_value=2_000),
    st.integers(min_value=1, max_value=2_000),
)
def test_chunks_cover_every_subscription_once_in_order(
    total: int, first: int, largest: int
) -> None:
    # Act
    bounds = chunk_bounds(total, first, largest)

    # Assert: contiguous from 0 to total, none empty, none over the largest.
    edges = [0] + [end for _, end in bounds]
    assert [start for start, _ in bounds] == edges[:-1]
    assert edges[-1] == total
    assert all(0 < size <= max(1, largest) for size in sizes(bounds))
    # Each chunk but the last is twice the one before, until the largest.
    full = sizes(bounds)[:-1]
    assert all(b == min(largest, 2 * a) for a, b in pairwise(full))
    if full:
        assert full[0] == min(first, largest)
