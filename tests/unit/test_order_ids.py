"""Unit tests of app.domain.ids.order_id (pure, no I/O)."""

from __future__ import annotations

import re
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.ids import FillOrderIds, order_id

LEADER = UUID("00000000-0000-4000-8000-000000000001")
SUBSCRIPTION = UUID("00000000-0000-4000-8000-000000000002")
OTHER = UUID("00000000-0000-4000-8000-000000000003")
CLIENT_ORDER_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")

# Fill ids as leaders send them: anything of 1..128 characters (JSON cannot carry lone surrogates).
fill_ids = st.text(min_size=1, max_size=128)
legs = st.integers(min_value=0, max_value=1_000)
Key = tuple[UUID, str, UUID, int]
keys = st.tuples(st.uuids(), fill_ids, st.uuids(), legs)


def test_same_inputs_give_the_same_id() -> None:
    # Act
    first = order_id(LEADER, "fill-1", SUBSCRIPTION, 0)
    second = order_id(LEADER, "fill-1", SUBSCRIPTION, 0)

    # Assert
    assert first == second


@given(keys)
def test_a_uuid_and_its_text_give_the_same_id(key: Key) -> None:
    # Arrange: the engine passes the ids as text it formatted once, other callers as UUIDs.
    leader, fill_id, subscription, leg = key

    # Act
    from_uuids = order_id(leader, fill_id, subscription, leg)
    from_text = order_id(str(leader), fill_id, str(subscription), leg)

    # Assert
    assert from_uuids == from_text


def test_default_leg_is_leg_zero() -> None:
    # Act
    implicit = order_id(LEADER, "fill-1", SUBSCRIPTION)
    explicit = order_id(LEADER, "fill-1", SUBSCRIPTION, 0)

    # Assert
    assert implicit == explicit


@pytest.mark.parametrize(
    ("leg", "expected"),
    [
        pytest.param(0, "ctVm6vcOPScY6nACBhO-ol6A", id="leg-0"),
        pytest.param(1, "ctpzxmVcZskVgvaQ7qfOy0_g", id="leg-1"),
    ],
)
def test_ids_are_stable_across_releases(leg: int, expected: str) -> None:
    # Arrange: an order retried after a deploy must keep its id, so the derivation is pinned

    # Act
    oid = order_id(LEADER, "fill-1", SUBSCRIPTION, leg)

    # Assert
    assert oid == expected


@pytest.mark.parametrize(
    "other",
    [
        pytest.param((OTHER, "fill-1", SUBSCRIPTION, 0), id="leader"),
        pytest.param((LEADER, "fill-2", SUBSCRIPTION, 0), id="fill"),
        pytest.param((LEADER, "FILL-1", SUBSCRIPTION, 0), id="fill-case"),
        pytest.param((LEADER, "fill-1 ", SUBSCRIPTION, 0), id="fill-trailing-space"),
        pytest.param((LEADER, "fill-1", OTHER, 0), id="subscription"),
        pytest.param((LEADER, "fill-1", SUBSCRIPTION, 1), id="leg"),
        pytest.param((SUBSCRIPTION, "fill-1", LEADER, 0), id="leader-and-subscription-swapped"),
        pytest.param(
            (LEADER, f"fill-1\x1f{SUBSCRIPTION}\x1f0", SUBSCRIPTION, 0),
            id="fill-id-embedding-the-separator",
        ),
    ],
)
def test_every_component_changes_the_id(other: Key) -> None:
    # Arrange
    base = order_id(LEADER, "fill-1", SUBSCRIPTION, 0)

    # Act
    changed = order_id(*other)

    # Assert
    assert changed != base


@pytest.mark.parametrize(
    "fill_id",
    [
        pytest.param("x", id="one-char"),
        pytest.param("f" * 128, id="128-chars"),
        pytest.param("\u00e9\u4e2d\U0001f600", id="non-ascii"),
        pytest.param("a b/c+d=e\x00\n", id="punctuation-and-controls"),
    ],
)
def test_id_is_a_valid_client_order_id(fill_id: str) -> None:
    # Act
    oid = order_id(LEADER, fill_id, SUBSCRIPTION, 7)

    # Assert
    assert CLIENT_ORDER_ID.fullmatch(oid)


@given(key=keys)
def test_id_always_matches_the_client_order_id_alphabet(key: Key) -> None:
    # Act
    oid = order_id(*key)

    # Assert
    assert CLIENT_ORDER_ID.fullmatch(oid)


@given(key=keys)
def test_id_is_deterministic(key: Key) -> None:
    # Act / Assert
    assert order_id(*key) == order_id(*key)


@given(sample=st.lists(keys, min_size=2, max_size=50, unique=True))
def test_distinct_inputs_give_distinct_ids(sample: list[Key]) -> None:
    # Act
    ids = {order_id(*key) for key in sample}

    # Assert
    assert len(ids) == len(sample)


@given(
    leader=st.uuids(),
    fill_id=fill_ids,
    subscription=st.uuids(),
    legs_sample=st.lists(legs, min_size=2, max_size=20, unique=True),
)
def test_legs_of_one_fill_get_distinct_ids(
    leader: UUID, fill_id: str, subscription: UUID, legs_sample: list[int]
) -> None:
    # Act
    ids = {order_id(leader, fill_id, subscription, leg) for leg in legs_sample}

    # Assert
    assert len(ids) == len(legs_sample)


@given(
    leader=st.uuids(),
    fill_id=fill_ids,
    orders=st.lists(st.tuples(st.uuids(), legs), min_size=1, max_size=20),
)
def test_one_fills_id_maker_gives_each_order_its_own_id(
    leader: UUID, fill_id: str, orders: list[tuple[UUID, int]]
) -> None:
    # Arrange: one maker for the whole fill, as the sizing engine holds it.
    ids = FillOrderIds(leader, fill_id)

    # Act
    made = [ids(subscription, leg) for subscription, leg in orders]

    # Assert: each as if made alone, whatever came before it.
    assert made == [order_id(leader, fill_id, str(s), leg) for s, leg in orders]
