"""Hypothesis properties of app.domain.planner over random leader fill sequences.

Equities, steps and multipliers stay constant through a sequence; every planned leg is
assumed to fill in full, and every leader fill moves the leader's position.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.model import Side, SkipReason
from app.domain.planner import (
    InstrumentRules,
    Plan,
    PlanContext,
    SizingMode,
    SizingSettings,
    plan,
    plan_within,
    planning,
)
from app.domain.positions import apply_fill, sign
from tests.unit.plan_builders import AT, SYMBOL, equity, make_fill

# --- strategies: exact decimals built from integers scaled by powers of ten, never floats ---


def scaled(n: int, e: int) -> Decimal:
    """``n * 10**e`` exactly."""
    return Decimal(f"{n}e{e}")


def exact(max_int: int, min_exp: int, max_exp: int) -> st.SearchStrategy[Decimal]:
    return st.builds(scaled, st.integers(1, max_int), st.integers(min_exp, max_exp))


def optional(strategy: st.SearchStrategy[Decimal]) -> st.SearchStrategy[Decimal | None]:
    return st.one_of(st.none(), strategy)


@dataclass(frozen=True)
class Intent:
    """What the leader does next; sized against the leader's position when it is replayed."""

    kind: str  # trade, close, reverse, partial
    side: Side
    qty: Decimal
    tenths: int
    price: Decimal


@dataclass(frozen=True)
class Scenario:
    settings: SizingSettings
    rules: InstrumentRules
    leader_equity: Decimal
    follower_equity: Decimal
    gross: Decimal
    intents: tuple[Intent, ...]


@dataclass(frozen=True)
class Step:
    ctx: PlanContext
    plan: Plan
    follower_after: Decimal


intents = st.builds(
    Intent,
    kind=st.sampled_from(["trade", "trade", "close", "reverse", "partial"]),
    side=st.sampled_from(Side),
    qty=exact(5000, -3, 0),
    tenths=st.integers(1, 9),
    price=exact(10**6, -2, 2),
)


@st.composite
def scenarios(
    draw: st.DrawFn,
    modes: tuple[SizingMode, ...] = tuple(SizingMode),
    capped: bool = True,
    minimums: bool = True,
) -> Scenario:
    mode = draw(st.sampled_from(modes))
    no_cap: st.SearchStrategy[Decimal | None] = st.none()
    notional_cap = optional(exact(10**6, -1, 3)) if capped else no_cap
    settings = SizingSettings(
        mode=mode,
        multiplier=draw(exact(40, -1, 0)),
        notional=draw(exact(10**5, -1, 2)),
        max_order_notional=draw(notional_cap),
        max_position_notional=draw(notional_cap),
        max_leverage=draw(optional(exact(100, -1, 0)) if capped else no_cap),
        # Up to a 5% band.
        max_slippage=draw(optional(st.builds(scaled, st.integers(0, 50), st.just(-3)))),
    )
    zero: st.SearchStrategy[Decimal] = st.just(Decimal(0))
    rules = InstrumentRules(
        symbol=SYMBOL,
        qty_step=scaled(draw(st.sampled_from([1, 2, 5, 25])), draw(st.integers(-4, -1))),
        min_qty=draw(st.one_of(zero, exact(100, -3, 0)) if minimums else zero),
        min_notional=draw(st.one_of(zero, exact(100, -1, 2)) if minimums else zero),
        price_step=draw(optional(exact(5, -4, 0))) if capped else None,
    )
    leader_equity = draw(exact(10**7, -2, 3))
    # Followers from a ten-thousandth of the leader's equity to ten times it.
    follower_equity = leader_equity * scaled(draw(st.integers(1, 99)), draw(st.integers(-4, -1)))
    return Scenario(
        settings=settings,
        rules=rules,
        leader_equity=leader_equity,
        follower_equity=follower_equity,
        # Other symbols' exposure: up to three times the follower's equity.
        gross=follower_equity * scaled(draw(st.integers(0, 30)), -1),
        intents=tuple(draw(st.lists(intents, min_size=1, max_size=25))),
    )


def leader_fill(position: Decimal, intent: Intent) -> tuple[Side, Decimal]:
    """Turn an intent into a fill against the leader's current position."""
    against = Side.SELL if position > 0 else Side.BUY
    with localcontext() as ctx:
        ctx.prec = 100  # exact
        if position == 0 or intent.kind == "trade":
            return intent.side, intent.qty
        if intent.kind == "close":
            return against, abs(position)
        if intent.kind == "reverse":
            return against, abs(position) + intent.qty
        return against, abs(position) * intent.tenths / 10


def simulate(scenario: Scenario) -> list[Step]:
    """Replay the intents; apply every fill to the leader and every leg to the follower."""
    leader = follower = Decimal(0)
    steps = []
    for intent in scenario.intents:
        side, qty = leader_fill(leader, intent)
        ctx = PlanContext(
            fill=make_fill(side, qty, intent.price),
            leader_position_before=leader,
            leader_equity=equity(scenario.leader_equity, 1),
            follower_equity=equity(scenario.follower_equity, 2),
            now=AT,
            follower_position_before=follower,
            follower_gross_exposure=scenario.gross,
            instrument=scenario.rules,
            settings=scenario.settings,
        )
        result = plan(ctx)
        for leg in result.legs:
            follower = apply_fill(follower, leg.side, leg.qty)
        leader = apply_fill(leader, side, qty)
        steps.append(Step(ctx, result, follower))
    return steps


def exact_target(scenario: Scenario, leader_position: Decimal) -> Fraction:
    return (
        Fraction(leader_position)
        * Fraction(scenario.follower_equity)
        * Fraction(scenario.settings.multiplier)
        / Fraction(scenario.leader_equity)
    )


def round_toward_zero(value: Fraction, step: Decimal) -> Fraction:
    units = abs(value) // Fraction(step)
    return units * Fraction(step) * (1 if value >= 0 else -1)


# --- properties ---


@given(scenario=scenarios())
def test_the_follower_is_flat_whenever_the_leader_is_flat(scenario: Scenario) -> None:
    # Act
    steps = simulate(scenario)

    # Assert
    for step in steps:
        assert step.plan.leader_position_after == step.ctx.leader_position_before + (
            step.ctx.fill.qty if step.ctx.fill.side is Side.BUY else -step.ctx.fill.qty
        )
        assert step.plan.follower_position_after == step.follower_after
        if step.plan.leader_position_after == 0:
            assert step.follower_after == 0


@given(scenario=scenarios())
def test_the_follower_never_holds_the_other_side(scenario: Scenario) -> None:
    # Act
    steps = simulate(scenario)

    # Assert
    for step in steps:
        assert sign(step.follower_after) * sign(step.plan.leader_position_after) >= 0


@given(scenario=scenarios(modes=(SizingMode.TARGET,), capped=False, minimums=False))
def test_target_mode_stays_within_one_step_of_the_target(scenario: Scenario) -> None:
    # Arrange
    step_size = Fraction(scenario.rules.qty_step)

    # Act
    steps = simulate(scenario)

    # Assert
    for step in steps:
        target = exact_target(scenario, step.plan.leader_position_after)
        follower = Fraction(step.follower_after)
        assert abs(follower - target) < step_size
        assert abs(follower - round_toward_zero(target, scenario.rules.qty_step)) <= step_size
        assert step.plan.skip_reason in (
            None,
            SkipReason.ROUNDS_TO_ZERO,
            SkipReason.TARGET_REACHED,
            SkipReason.NO_POSITION_TO_REDUCE,
        )


@given(scenario=scenarios())
def test_no_cap_is_ever_exceeded(scenario: Scenario) -> None:
    # Arrange
    settings = scenario.settings

    # Act
    steps = simulate(scenario)

    # Assert: caps bind whenever a leg opens or adds
    for step in steps:
        price = Fraction(step.ctx.fill.price)
        held_notional = abs(Fraction(step.follower_after)) * price
        for leg in step.plan.legs:
            if leg.reduce_only:
                continue
            if settings.max_order_notional is not None:
                assert Fraction(leg.qty) * price <= Fraction(settings.max_order_notional)
            if settings.max_position_notional is not None:
                assert held_notional <= Fraction(settings.max_position_notional)
            if settings.max_leverage is not None:
                exposure = Fraction(scenario.gross) + held_notional
                limit = Fraction(settings.max_leverage) * Fraction(scenario.follower_equity)
                assert exposure <= limit


@given(scenario=scenarios())
def test_no_order_is_bigger_than_the_target_requires(scenario: Scenario) -> None:
    # Act
    steps = simulate(scenario)

    # Assert
    for step in steps:
        total = sum((Fraction(leg.qty) for leg in step.plan.legs), Fraction(0))
        before = Fraction(step.ctx.follower_position_before)
        if step.plan.legs:
            assert step.plan.raw_qty is not None
            assert total <= Fraction(step.plan.raw_qty)
        if scenario.settings.mode is SizingMode.TARGET:
            target = exact_target(scenario, step.plan.leader_position_after)
            assert total <= abs(target - before)
        for leg in step.plan.legs:
            assert leg.side is step.ctx.fill.side  # never against the leader's fill
            if leg.reduce_only:
                assert Fraction(leg.qty) <= abs(before)


@given(scenario=scenarios())
def test_legs_are_whole_steps_and_well_formed(scenario: Scenario) -> None:
    # Act
    steps = simulate(scenario)

    # Assert
    for step in steps:
        legs, before = step.plan.legs, step.ctx.follower_position_before
        assert len(legs) <= 2
        if len(legs) == 2:
            assert legs[0].reduce_only
            assert legs[0].qty == abs(before)
            assert not legs[1].reduce_only
        assert (not legs) == step.plan.skipped
        if not legs:
            assert step.plan.skip_reason is not None
            assert step.follower_after == before
        for leg in legs:
            assert leg.qty > 0
            assert (Fraction(leg.qty) / Fraction(scenario.rules.qty_step)).denominator == 1
            bounded = not leg.reduce_only and scenario.settings.max_slippage is not None
            assert (leg.limit_price is not None) == bounded
            assert (leg.time_in_force == "IOC") == bounded
        if scenario.settings.status == "active" and step.plan.status_change is None:
            assert SkipReason.CLOSE_ONLY is not step.plan.skip_reason


@given(scenario=scenarios())
def test_planning_a_batch_in_one_context_gives_what_plan_gives(scenario: Scenario) -> None:
    # Arrange: every step's context of a replayed scenario, as one fan-out would plan them.
    contexts = [step.ctx for step in simulate(scenario)]

    # Act
    with planning():
        batched = [plan_within(ctx) for ctx in contexts]

    # Assert: the same plans, down to each Decimal's digits and exponent.
    assert [repr(p) for p in batched] == [repr(plan(ctx)) for ctx in contexts]


def test_plan_within_refuses_the_default_decimal_context() -> None:
    # Arrange
    ctx = simulate(
        Scenario(
            SizingSettings(),
            InstrumentRules(SYMBOL, Decimal("0.001")),
            Decimal(1000),
            Decimal(100),
            Decimal(0),
            (Intent("trade", Side.BUY, Decimal(1), 1, Decimal(100)),),
        )
    )[0].ctx

    # Act / Assert
    with pytest.raises(RuntimeError, match="planning"):
        plan_within(ctx)
