"""The vector path (app.domain.vector_sizing) against the Decimal planner, its reference.

One leader fill is sized for many subscriptions at once; each row's Plan must equal what
``planner.plan`` returns for the same inputs: legs (side, size, reduce_only), skip reason,
positions, the explanation's figures (target, ratio, raw size, residue) and status changes.
Rows the vector path leaves to the planner (a position off its step, an equity with more than
8 decimals) must say so, and the others must be sized.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.model import EquityReading, Fill, Side, SkipReason
from app.domain.planner import (
    InstrumentRules,
    Plan,
    PlanContext,
    Rounding,
    SizingMode,
    SizingSettings,
    SubscriptionStatus,
    plan,
    planning,
)
from app.domain.vector_sizing import TargetRows, covers
from tests.unit.plan_builders import AT, SYMBOL, equity, make_fill, rules


def scaled(n: int, e: int) -> Decimal:
    """``n * 10**e`` exactly."""
    return Decimal(f"{n}e{e}")


def exact(low: int, high: int, min_exp: int, max_exp: int) -> st.SearchStrategy[Decimal]:
    return st.builds(scaled, st.integers(low, high), st.integers(min_exp, max_exp))


@dataclass(frozen=True)
class Row:
    settings: SizingSettings
    rules: InstrumentRules
    position: Decimal
    follower: EquityReading | None


def vector_plans(
    fill: Fill,
    leader_before: Decimal,
    leader: EquityReading | None,
    rows: list[Row],
    incremental: bool = False,
) -> list[Plan | None]:
    """Each row's Plan from the vector path (None: left to the planner). ``incremental``:
    built flat and without readings, then moved row by row, as a cached book is."""
    if incremental:
        table = TargetRows(
            fill.symbol,
            [(row.settings, row.rules, Decimal(0)) for row in rows],
            [None] * len(rows),
        )
        for index, row in enumerate(rows):
            table.set_position(index, row.position)
            table.set_equity(index, row.follower)
    else:
        table = TargetRows(
            fill.symbol,
            [(row.settings, row.rules, row.position) for row in rows],
            [row.follower for row in rows],
        )
    sized = table.size(fill, leader_before, leader, AT)
    if sized is None:
        return [None] * len(rows)
    out: list[Plan | None] = []
    with planning():
        for index, row in enumerate(rows):
            if sized.fallback[index]:
                out.append(None)
                continue
            out.append(
                sized.plan(
                    index, row.rules.symbol, row.position, row.follower, row.settings.multiplier
                )
            )
    return out


def planner_plan(
    fill: Fill, leader_before: Decimal, leader: EquityReading | None, row: Row
) -> Plan:
    return plan(
        PlanContext(
            fill=fill,
            leader_position_before=leader_before,
            leader_equity=leader,
            follower_equity=row.follower,
            now=AT,
            follower_position_before=row.position,
            follower_gross_exposure=Decimal(0),
            instrument=row.rules,
            settings=row.settings,
        )
    )


def assert_same(
    fill: Fill, leader_before: Decimal, leader: EquityReading | None, rows: list[Row]
) -> list[Plan | None]:
    vector = vector_plans(fill, leader_before, leader, rows)
    assert vector_plans(fill, leader_before, leader, rows, incremental=True) == vector
    for row, got in zip(rows, vector, strict=True):
        if got is not None:
            expected = planner_plan(fill, leader_before, leader, row)
            assert got == expected, row
            # To the digit, not only the value: a NUMERIC column keeps the scale it is given.
            assert [str(leg.qty) for leg in got.legs] == [str(leg.qty) for leg in expected.legs]
            assert str(got.follower_position_after) == str(expected.follower_position_after)
    return vector


# --- strategies -----------------------------------------------------------------------------

STEPS = st.one_of(
    st.sampled_from(["0.001", "0.01", "1", "0.00000001", "5", "0.5", "0.025"]).map(Decimal),
    exact(1, 999, -9, 1),
)


@st.composite
def instrument(draw: st.DrawFn) -> InstrumentRules:
    step = draw(STEPS)
    min_qty = draw(st.one_of(st.just(Decimal(0)), st.integers(1, 20).map(lambda k: k * step)))
    if draw(st.booleans()):
        min_qty += draw(exact(1, 9, -10, -4))  # off the step
    min_notional = draw(st.one_of(st.just(Decimal(0)), exact(1, 500, -1, 2)))
    return InstrumentRules(SYMBOL, step, min_qty, min_notional)


def reading(equities: st.SearchStrategy[Decimal]) -> st.SearchStrategy[EquityReading | None]:
    ages = st.sampled_from([0, 0, 30, 600, -5])  # seconds before AT (-5: a clock ahead)
    present = st.builds(
        lambda value, age: EquityReading(1, value, AT - timedelta(seconds=age)),
        equities,
        ages,
    )
    return st.one_of(present, present, present, present, st.none())


EQUITIES = st.one_of(
    exact(1, 10**6, -8, 2),  # up to 8 decimals: in the vector's units
    exact(1, 10**6, -12, -9),  # more decimals: the planner's
    exact(1, 10**18, -8, 12),  # past int64 once multiplied: exact Python ints
    st.sampled_from([Decimal(0), Decimal("-50")]),
)


@st.composite
def sizing(draw: st.DrawFn, healthy: bool) -> SizingSettings:
    symbols = draw(st.sampled_from(["none"] * 6 + ["deny", "allow", "allow_other"]))
    active = SubscriptionStatus.ACTIVE
    if healthy:
        return SizingSettings(
            multiplier=draw(st.one_of(st.just(Decimal(1)), exact(1, 300, -2, 1))),
            rounding=draw(st.sampled_from(Rounding)),
        )
    return SizingSettings(
        mode=SizingMode.TARGET,
        multiplier=draw(st.one_of(st.just(Decimal(1)), exact(1, 300, -2, 1))),
        rounding=draw(st.sampled_from(Rounding)),
        status=draw(st.sampled_from([*SubscriptionStatus, *[active] * 6])),
        equity_floor=draw(st.one_of(st.none(), st.none(), exact(-100, 5000, -3, 1))),
        max_equity_age_s=draw(st.sampled_from([None, None, None, 60.0, 0.5, 1e-7])),
        deny=frozenset({SYMBOL}) if symbols == "deny" else frozenset(),
        allow={"allow": frozenset({SYMBOL}), "allow_other": frozenset({"ETHUSDT"})}.get(symbols),
    )


FRESH_EQUITIES = exact(1, 10**6, -8, 2)


@st.composite
def rows(draw: st.DrawFn, after: Decimal, leader: EquityReading | None, healthy: bool) -> Row:
    inst = draw(instrument())
    settings_ = draw(sizing(healthy))
    if healthy:
        follower = draw(st.builds(lambda value: EquityReading(2, value, AT), FRESH_EQUITIES))
    else:
        follower = draw(st.one_of(*[reading(FRESH_EQUITIES)] * 4, reading(EQUITIES)))
    step = Fraction(inst.qty_step)
    target = Fraction(0)
    if leader is not None and leader.equity > 0 and follower is not None:
        target = (
            Fraction(after) * Fraction(follower.equity) * Fraction(settings_.multiplier)
            / Fraction(leader.equity) / step
        )  # fmt: skip
    # Positions near the target (reached, short of it, past it, on the other side), small,
    # or huge.
    share = draw(st.sampled_from([0, 1, 1, Fraction(1, 2), Fraction(3, 2), -1, None, None]))
    jitter = draw(st.integers(-3, 3))
    if share is None:
        steps = draw(st.one_of(st.integers(-3000, 3000), st.integers(-(10**15), 10**15)))
    else:
        steps = int(target * share) + jitter
    position = steps * inst.qty_step
    if draw(st.integers(0, 9)) == 0:
        position += draw(exact(1, 9, -12, -10))  # off the step: the planner's
    return Row(settings_, inst, position, follower)


@st.composite
def scenarios(
    draw: st.DrawFn, healthy: bool
) -> tuple[Fill, Decimal, EquityReading | None, list[Row]]:
    side = draw(st.sampled_from(Side))
    qty = draw(exact(1, 5000, -4, 1))
    price = draw(exact(1, 10**6, -3, 2))
    before = draw(
        st.one_of(
            st.just(Decimal(0)),
            exact(-5000, 5000, -3, 1),
            st.just(qty if side is Side.SELL else -qty),  # the fill closes it
            st.just(qty / 2 if side is Side.SELL else -qty / 2),  # it reverses it
            st.just(qty * 3 if side is Side.SELL else -qty * 3),  # it reduces it
        )
    )
    fresh = st.builds(lambda value: EquityReading(1, value, AT), exact(1, 10**6, -8, 0))
    leader_strategy = st.one_of(
        *[fresh] * 6, reading(st.sampled_from([Decimal(1000), Decimal(0), Decimal(-1)]))
    )
    leader = draw(fresh if healthy else leader_strategy)
    after = before + (qty if side is Side.BUY else -qty)
    table = draw(st.lists(rows(after, leader, healthy), min_size=1, max_size=12))
    return make_fill(side, qty, price), before, leader, table


@settings(deadline=None)  # as many examples as the profile gives (tests/conftest.py)
@given(st.one_of(scenarios(healthy=True), scenarios(healthy=False)))
def test_vector_plans_equal_the_planners(
    scenario: tuple[Fill, Decimal, EquityReading | None, list[Row]],
) -> None:
    """Any mix of settings, readings and positions: healthy rows (fresh equities, active,
    every symbol) half the time, so that most examples reach the sizing arithmetic."""
    fill, before, leader, table = scenario
    vector = assert_same(fill, before, leader, table)
    # The vector path sizes every row whose values it can hold exactly, and leaves no other.
    for row, got in zip(table, vector, strict=True):
        steps = Fraction(row.position) / Fraction(row.rules.qty_step)
        units = None if row.follower is None else Fraction(row.follower.equity) * 10**8
        whole = units is None or (units.denominator == 1 and abs(units) < 2**62)
        if got is None and steps.denominator == 1 and whole and abs(steps) < 10**15:
            assert vector == [None] * len(table)  # only a fill past the exactness bound


# --- examples -------------------------------------------------------------------------------

LEADER = equity("100000")
TENTH = equity("10000", 2)  # a tenth of the leader


def one(
    fill: Fill,
    before: str,
    position: str,
    *,
    settings_: SizingSettings | None = None,
    inst: InstrumentRules | None = None,
    follower: EquityReading | None = TENTH,
) -> Plan:
    row = Row(settings_ or SizingSettings(), inst or rules(), Decimal(position), follower)
    [got] = assert_same(fill, Decimal(before), LEADER, [row])
    assert got is not None
    return got


def legs(result: Plan) -> list[tuple[str, str, bool]]:
    return [(leg.side.value, str(leg.qty.normalize()), leg.reduce_only) for leg in result.legs]


def test_opening_fill_buys_a_tenth() -> None:
    result = one(make_fill(Side.BUY, "2"), "0", "0")
    assert legs(result) == [("buy", "0.2", False)]
    assert result.skip_reason is None


def test_a_flip_closes_then_opens() -> None:
    # Leader long 1 sells 3: short 2; the follower long 0.1 closes it and sells 0.2 more.
    result = one(make_fill(Side.SELL, "3"), "1", "0.1")
    assert legs(result) == [("sell", "0.1", True), ("sell", "0.2", False)]


def test_leader_close_takes_the_follower_flat() -> None:
    result = one(make_fill(Side.SELL, "1"), "1", "0.1")
    assert legs(result) == [("sell", "0.1", True)]
    assert result.target == 0


def test_reduce_against_an_out_of_sync_follower_closes_it_whole() -> None:
    result = one(make_fill(Side.SELL, "1"), "3", "-0.05")
    assert legs(result) == [("buy", "0.05", True)]


@pytest.mark.parametrize(
    ("rounding", "expected"), [(Rounding.CONSERVATIVE, "0.2"), (Rounding.NEAREST, "0.2")]
)
def test_reducing_order_rounds_by_policy(rounding: Rounding, expected: str) -> None:
    # Target 0.1 x 1.25 = 0.125 from 0.3: sell 0.175; conservative rounds a reduction up.
    result = one(
        make_fill(Side.SELL, "1.75"),
        "3",
        "0.3",
        settings_=SizingSettings(rounding=rounding),
        inst=rules("0.1"),
    )
    assert legs(result) == [("sell", expected, True)]


def test_zero_quantity_is_skipped() -> None:
    result = one(make_fill(Side.BUY, "0.001"), "0", "0", inst=rules("0.01"))
    assert result.skip_reason is SkipReason.ROUNDS_TO_ZERO
    assert result.legs == ()


@pytest.mark.parametrize(
    ("inst", "reason"),
    [
        (rules("0.001", min_qty="0.5"), SkipReason.BELOW_MIN_QTY),
        (rules("0.001", min_notional="10001"), SkipReason.BELOW_MIN_NOTIONAL),
    ],
)
def test_minimums_skip(inst: InstrumentRules, reason: SkipReason) -> None:
    result = one(make_fill(Side.BUY, "2"), "0", "0", inst=inst)  # 0.2 x 50000 = 10000
    assert result.skip_reason is reason


def test_reduce_only_keeps_the_close_and_skips_the_opening() -> None:
    settings_ = SizingSettings(status=SubscriptionStatus.CLOSE_ONLY)
    result = one(make_fill(Side.SELL, "3"), "1", "0.1", settings_=settings_)
    assert legs(result) == [("sell", "0.1", True)]
    assert result.skip_reason is SkipReason.CLOSE_ONLY


def test_equity_floor_turns_close_only() -> None:
    settings_ = SizingSettings(equity_floor=Decimal("20000"))
    result = one(make_fill(Side.BUY, "2"), "0", "0", settings_=settings_)
    assert result.status_change is SubscriptionStatus.CLOSE_ONLY
    assert result.skip_reason is SkipReason.CLOSE_ONLY


def test_stale_equity_is_reported() -> None:
    old = EquityReading(2, Decimal(10000), AT - timedelta(minutes=5))
    settings_ = SizingSettings(max_equity_age_s=60.0)
    result = one(make_fill(Side.BUY, "2"), "0", "0", settings_=settings_, follower=old)
    assert result.skip_reason is SkipReason.STALE_EQUITY


def test_past_int64_the_rows_are_sized_with_python_ints() -> None:
    # 1.2e18 units of equity x a leader position of 8 decimals: the products need Python ints.
    rich = equity("12345678901.12345678", 2)
    fill = make_fill(Side.BUY, "0.12345678")
    result = one(fill, "0", "0", inst=rules("0.00000001"), follower=rich)
    exact_target = Fraction(fill.qty) * Fraction(rich.equity) / 100000
    assert result.legs[0].qty == Decimal(int(exact_target * 10**8)) / 10**8


def test_rows_off_the_step_are_left_to_the_planner() -> None:
    row = Row(SizingSettings(), rules("0.01"), Decimal("0.015"), TENTH)
    assert vector_plans(make_fill(), Decimal(0), LEADER, [row]) == [None]


def test_covers_only_target_mode_without_caps_or_band() -> None:
    assert covers(SizingSettings(multiplier=Decimal(2)))
    assert not covers(SizingSettings(mode=SizingMode.PER_FILL))
    assert not covers(SizingSettings(max_order_notional=Decimal(100)))
    assert not covers(SizingSettings(max_slippage=Decimal("0.01")))


def test_commit_moves_positions_and_status() -> None:
    settings_ = SizingSettings(equity_floor=Decimal("5000"))
    table = TargetRows(SYMBOL, [(settings_, rules(), Decimal(0))] * 2, [TENTH, None])
    table.set_equity(1, equity("4000", 3))  # one at a time, as the equity cache moves
    sized = table.size(make_fill(Side.BUY, "2"), Decimal(0), LEADER, AT)
    assert sized is not None
    table.commit(sized)
    assert table.position.tolist() == [200, 0]
    assert table.close_only.tolist() == [False, True]
    assert np.array_equal(table.bad_position, [False, False])
