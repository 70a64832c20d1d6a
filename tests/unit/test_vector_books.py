"""The engine's vector columns kept in step with the book over a sequence of fills.

Two copies of one leader's book take the same fills: one planned with the vector path (its
columns built once and moved after each fill), one by the Decimal planner alone. Every fill's
orders must be the same to the byte, while equities move, a subscription crosses its equity
floor, followers are renamed onto the same symbol from two leader symbols, and some
subscriptions have caps (the planner's, in the same fill).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.ids import FillOrderIds
from app.domain.model import EquityReading, Fill, Side
from app.domain.plan_model import Rounding, SizingSettings
from app.domain.positions import signed_qty
from app.executors.protocol.messages import FillMessages
from app.sizing.books import LeaderBook, SubscriptionBook, move_book
from app.sizing.engine import SizingEngine
from app.sizing.equity_cache import EquityCache
from app.sizing.fill_plan import FillInputs
from app.sizing.vector_books import committed, size_fill, wide_enough

NOW = datetime(2026, 12, 7, tzinfo=UTC)
NONE: Any = None  # the pool and connections, never used: nothing here is recorded

SETTINGS = [
    SizingSettings(),
    SizingSettings(multiplier=Decimal("2.5"), rounding=Rounding.NEAREST),
    SizingSettings(equity_floor=Decimal("900")),
    SizingSettings(symbol_map={"XBTUSDT": "BTCUSDT"}),
    SizingSettings(max_order_notional=Decimal("20000")),  # a cap: the planner's
]


def make_books(equity: EquityCache, leader: UUID) -> tuple[LeaderBook, LeaderBook]:
    subs = [(uuid4(), uuid4(), SETTINGS[n % len(SETTINGS)]) for n in range(15)]
    for n, (_, follower, _) in enumerate(subs):
        equity.observe(None, follower, EquityReading(n + 2, Decimal(1000 + 37 * n), NOW))
    return tuple(  # type: ignore[return-value]
        LeaderBook(leader, [SubscriptionBook(s, f, c) for s, f, c in subs], {}) for _ in range(2)
    )


def run_fill(
    engine: SizingEngine, book: LeaderBook, fill: Fill, vector_path: bool
) -> list[tuple[str, str, str | None, str]]:
    """Plan one fill as the engine does, then move the book as its commit would."""
    before = book.positions.get(fill.symbol, Decimal(0))
    leader_equity = engine._equity.leader(book.leader_id)
    inputs = FillInputs(
        fill,
        before,
        leader_equity,
        NOW,
        FillMessages(fill, NOW, NOW + timedelta(seconds=30), leader_equity),
        FillOrderIds(book.leader_id, fill.fill_id),
    )
    vector = None
    if vector_path:
        vector = size_fill(
            book, fill, before, leader_equity, NOW, engine._equity,
            lambda sub, symbol: engine._placement(book, sub, symbol),
        )  # fmt: skip
        assert vector is not None
    batch = engine._plan(book, inputs, book.subscriptions, vector)
    move_book(book, fill, signed_qty(fill.side, fill.qty), batch.applied)
    committed(book, vector, batch.applied)
    return [(o.order_id, o.status, o.skip_reason, o.payload) for o in batch.produced]


STEP = st.tuples(
    st.sampled_from(["BTCUSDT", "BTCUSDT", "XBTUSDT"]),
    st.sampled_from(Side),
    st.sampled_from(["0.5", "1", "2", "3.3"]).map(Decimal),
    st.sampled_from([None, None, 0, 7]),  # a follower whose equity moves before the fill
    st.sampled_from([Decimal(500), Decimal(1100), Decimal("1234.56789")]),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(STEP, min_size=1, max_size=8))
def test_vector_books_follow_the_planner_fill_after_fill(steps: list[Any]) -> None:
    # Arrange: one equity cache, two copies of the book, the leader at 10,000.
    equity = EquityCache(NONE, "", 30.0)
    leader = uuid4()
    equity.observe(leader, None, EquityReading(1, Decimal(10000), NOW))
    vector_book, planner_book = make_books(equity, leader)
    engine = SizingEngine(NONE, NONE, equity, order_ttl_s=30.0)
    engine._rules = {}

    for n, (symbol, side, qty, moved, new_equity) in enumerate(steps):
        if moved is not None:
            follower = vector_book.subscriptions[moved].follower_id
            equity.observe(None, follower, EquityReading(100 + n, new_equity, NOW))
        fill = Fill(leader, f"f-{n}", symbol, side, qty, Decimal(50000), NOW, NOW)

        # Act
        by_vector = run_fill(engine, vector_book, fill, vector_path=True)
        by_planner = run_fill(engine, planner_book, fill, vector_path=False)

        # Assert: the same orders, and the same positions and statuses afterwards.
        assert by_vector == by_planner
        for ours, theirs in zip(vector_book.subscriptions, planner_book.subscriptions, strict=True):
            assert ours.positions == theirs.positions
            assert ours.settings.status == theirs.settings.status
    assert vector_book.columns  # the vector path was used


def test_a_floor_hit_in_one_symbol_keeps_the_follower_close_only_in_another() -> None:
    # Arrange: one subscription with an equity floor, columns built in ETHUSDT first.
    equity = EquityCache(NONE, "", 30.0)
    leader, follower = uuid4(), uuid4()
    equity.observe(leader, None, EquityReading(1, Decimal(10000), NOW))
    equity.observe(None, follower, EquityReading(2, Decimal(1000), NOW))
    floor = SizingSettings(equity_floor=Decimal("900"))
    books = [
        LeaderBook(leader, [SubscriptionBook(UUID(int=1), follower, floor)], {}) for _ in range(2)
    ]
    engine = SizingEngine(NONE, NONE, equity, order_ttl_s=30.0)
    engine._rules = {}
    fills = [
        ("ETHUSDT", Decimal(1), None),  # builds the ETH columns
        ("BTCUSDT", Decimal(1), Decimal(500)),  # below the floor: close_only from now on
        ("ETHUSDT", Decimal(1), Decimal(1100)),  # back above it: still close_only
    ]
    for n, (symbol, qty, new_equity) in enumerate(fills):
        if new_equity is not None:
            equity.observe(None, follower, EquityReading(10 + n, new_equity, NOW))
        fill = Fill(leader, f"f-{n}", symbol, Side.BUY, qty, Decimal(2000), NOW, NOW)

        # Act
        by_vector = run_fill(engine, books[0], fill, vector_path=True)
        by_planner = run_fill(engine, books[1], fill, vector_path=False)

        # Assert: no opening order once close_only, whichever symbol's columns size it.
        assert by_vector == by_planner
        assert books[0].subscriptions[0].positions == books[1].subscriptions[0].positions
    assert books[1].subscriptions[0].positions["ETHUSDT"] == Decimal("0.1")  # the first fill only


def test_a_book_is_wide_enough_only_with_enough_covered_subscriptions() -> None:
    # Arrange: a capped subscription is the planner's, not the vector path's.
    capped = SizingSettings(max_order_notional=Decimal("20000"))

    def book(settings: list[SizingSettings]) -> LeaderBook:
        return LeaderBook(uuid4(), [SubscriptionBook(uuid4(), uuid4(), s) for s in settings], {})

    # Act, Assert
    assert wide_enough(book([SizingSettings()] * 3), 3)
    assert not wide_enough(book([SizingSettings()] * 2), 3)
    assert not wide_enough(book([SizingSettings()] * 2 + [capped]), 3)
    assert wide_enough(book([SizingSettings()] * 3 + [capped]), 3)
