"""Hypothesis properties of app.domain.planner over random leader fill sequences.

A scenario draws the follower's starting position (either side, off the step too), the
subscription's status, symbol filters, caps, minimums and rounding policy, then a sequence of
leader fills; between fills the equities move, and each leg the planner sends may fill only
in part (an execution report short of the order). The invariants are checked on each plan,
against the exact target (fractions, not decimals):

- flat when the leader is flat, and never on the leader's other side;
- ``conservative``: never above the target in size; ``nearest``: within half a step of it;
- no cap exceeded; every leg recorded (sent, or held back with a reason);

each "unless a recorded reason says why", and only the reasons that can say it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.controls import limit_price
from app.domain.model import Side, SkipReason
from app.domain.planner import (
    InstrumentRules,
    Plan,
    PlanContext,
    Rounding,
    SizingMode,
    SizingSettings,
    SubscriptionStatus,
    plan,
    plan_within,
    planning,
)
from app.domain.positions import FillEffect, apply_fill, sign
from tests.unit.plan_builders import AT, SYMBOL, equity, make_fill

# Reasons that may leave a follower where the invariants say it should not be.
GATES = {SkipReason.SUBSCRIPTION_PAUSED, SkipReason.SYMBOL_DENIED, SkipReason.SYMBOL_NOT_ALLOWED}
MINIMUMS = {SkipReason.BELOW_MIN_QTY, SkipReason.BELOW_MIN_NOTIONAL}
# The follower is past its target in the fill's direction, or short of it (flat) against a
# reducing fill: reaching it would trade against the leader's fill (close_only is reported
# first where it applies).
NOT_AGAINST_THE_FILL = {
    SkipReason.TARGET_REACHED,
    SkipReason.CLOSE_ONLY,
    SkipReason.NO_POSITION_TO_REDUCE,
}

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
    # Equities before the fill, in percent of the scenario's (100: unchanged).
    leader_equity_pct: int = 100
    follower_equity_pct: int = 100
    # Of each leg the planner sends, how many quarters fill (4: all of it).
    filled_quarters: int = 4


@dataclass(frozen=True)
class Scenario:
    settings: SizingSettings
    rules: InstrumentRules
    leader_equity: Decimal
    follower_equity: Decimal
    gross: Decimal
    intents: tuple[Intent, ...]
    follower_start: Decimal = Decimal(0)


@dataclass(frozen=True)
class Step:
    ctx: PlanContext
    plan: Plan
    follower_after: Decimal  # what the follower holds once the legs filled (maybe in part)
    leader_equity: Decimal
    follower_equity: Decimal


def intents(moving: bool) -> st.SearchStrategy[Intent]:
    pct = st.sampled_from([100, 100, 50, 80, 125, 200]) if moving else st.just(100)
    return st.builds(
        Intent,
        kind=st.sampled_from(["trade", "trade", "close", "reverse", "partial"]),
        side=st.sampled_from(Side),
        qty=exact(5000, -3, 0),
        tenths=st.integers(1, 9),
        price=exact(10**6, -2, 2),
        leader_equity_pct=pct,
        follower_equity_pct=pct,
        filled_quarters=st.sampled_from([4, 4, 4, 0, 1, 2, 3]) if moving else st.just(4),
    )


@st.composite
def scenarios(
    draw: st.DrawFn,
    modes: tuple[SizingMode, ...] = tuple(SizingMode),
    capped: bool = True,
    minimums: bool = True,
    moving: bool = True,
    rounding: tuple[Rounding, ...] = tuple(Rounding),
) -> Scenario:
    """``moving``: equities change between fills, legs fill in part, the follower starts out
    of sync, and the subscription's status and symbol filters vary."""
    mode = draw(st.sampled_from(modes))
    no_cap: st.SearchStrategy[Decimal | None] = st.none()
    notional_cap = optional(exact(10**6, -1, 3)) if capped else no_cap
    status = SubscriptionStatus.ACTIVE
    allow: frozenset[str] | None = None
    deny: frozenset[str] = frozenset()
    if moving:
        status = draw(st.sampled_from([SubscriptionStatus.ACTIVE] * 4 + list(SubscriptionStatus)))
        allow = draw(st.sampled_from([None, None, None, frozenset({SYMBOL}), frozenset({"X"})]))
        deny = draw(st.sampled_from([frozenset(), frozenset(), frozenset({SYMBOL})]))
    settings = SizingSettings(
        mode=mode,
        multiplier=draw(exact(40, -1, 0)),
        notional=draw(exact(10**5, -1, 2)),
        max_order_notional=draw(notional_cap),
        max_position_notional=draw(notional_cap),
        max_leverage=draw(optional(exact(100, -1, 0)) if capped else no_cap),
        # Up to a 5% band.
        max_slippage=draw(optional(st.builds(scaled, st.integers(0, 50), st.just(-3)))),
        status=status,
        allow=allow,
        deny=deny,
        rounding=draw(st.sampled_from(rounding)),
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
    # Out of sync from the start: either side, on the step or off it (a partial fill).
    start = Decimal(0)
    if moving:
        start = draw(
            st.one_of(zero, exact(5000, -5, 0), exact(5000, -5, 0).map(Decimal.copy_negate))
        )
    return Scenario(
        settings=settings,
        rules=rules,
        leader_equity=leader_equity,
        follower_equity=follower_equity,
        # Other symbols' exposure: up to three times the follower's equity.
        gross=follower_equity * scaled(draw(st.integers(0, 30)), -1),
        intents=tuple(draw(st.lists(intents(moving), min_size=1, max_size=25))),
        follower_start=start,
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


def executed(qty: Decimal, quarters: int, step: Decimal) -> Decimal:
    """What an execution report says filled of ``qty``: all of it, or some whole steps."""
    if quarters == 4:
        return qty
    with localcontext() as ctx:
        ctx.prec = 100
        return (qty * quarters / 4 / step).to_integral_value(rounding="ROUND_DOWN") * step


def simulate(scenario: Scenario) -> list[Step]:
    """Replay the intents; apply every fill to the leader and what filled of every leg to the
    follower, which starts where the scenario says."""
    leader, follower = Decimal(0), scenario.follower_start
    steps = []
    for intent in scenario.intents:
        side, qty = leader_fill(leader, intent)
        leader_equity = scenario.leader_equity * intent.leader_equity_pct / 100
        follower_equity = scenario.follower_equity * intent.follower_equity_pct / 100
        ctx = PlanContext(
            fill=make_fill(side, qty, intent.price),
            leader_position_before=leader,
            leader_equity=equity(leader_equity, 1),
            follower_equity=equity(follower_equity, 2),
            now=AT,
            follower_position_before=follower,
            follower_gross_exposure=scenario.gross,
            instrument=scenario.rules,
            settings=scenario.settings,
        )
        result = plan(ctx)
        for leg in result.legs:
            done = executed(leg.qty, intent.filled_quarters, scenario.rules.qty_step)
            if done:
                follower = apply_fill(follower, leg.side, done)
        leader = apply_fill(leader, side, qty)
        steps.append(Step(ctx, result, follower, leader_equity, follower_equity))
    return steps


def exact_target(scenario: Scenario, step: Step) -> Fraction:
    return (
        Fraction(step.plan.leader_position_after)
        * Fraction(step.follower_equity)
        * Fraction(scenario.settings.multiplier)
        / Fraction(step.leader_equity)
    )


def says_why(step: Step, reasons: set[SkipReason]) -> bool:
    return step.plan.skip_reason in reasons


def no_limit_in_band(step: Step) -> bool:
    """A slippage band with a price step coarser than the price: no valid IOC limit exists,
    so the opening is skipped (rounds_to_zero) wherever the target is."""
    band = step.ctx.settings.max_slippage
    return (
        band is not None
        and step.plan.skip_reason is SkipReason.ROUNDS_TO_ZERO
        and any(
            limit_price(side, step.ctx.fill.price, band, step.ctx.instrument.price_step) <= 0
            for side in Side
        )
    )


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
        if step.plan.leader_position_after == 0 and not says_why(step, GATES):
            assert step.plan.follower_position_after == 0, step.plan


@given(scenario=scenarios())
def test_the_follower_never_holds_the_other_side(scenario: Scenario) -> None:
    # Act
    steps = simulate(scenario)

    # Assert: wherever it started, whatever filled before
    for step in steps:
        leader, follower = step.plan.leader_position_after, step.plan.follower_position_after
        if not says_why(step, GATES):
            assert sign(follower) * sign(leader) >= 0, step.plan


@given(scenario=scenarios(modes=(SizingMode.TARGET,), rounding=(Rounding.CONSERVATIVE,)))
def test_conservative_never_leaves_the_follower_above_its_target(scenario: Scenario) -> None:
    # Act
    steps = simulate(scenario)

    # Assert
    for step in steps:
        target = exact_target(scenario, step)
        follower = Fraction(step.plan.follower_position_after)
        if not says_why(step, GATES | MINIMUMS | NOT_AGAINST_THE_FILL):
            assert abs(follower) <= abs(target), step.plan


@given(scenario=scenarios(modes=(SizingMode.TARGET,), rounding=(Rounding.NEAREST,)))
def test_nearest_ends_within_half_a_step_of_the_target(scenario: Scenario) -> None:
    # Arrange
    half_step = Fraction(scenario.rules.qty_step) / 2

    # Act
    steps = simulate(scenario)

    # Assert
    for step in steps:
        target = exact_target(scenario, step)
        follower = Fraction(step.plan.follower_position_after)
        capped = bool(step.plan.clamps) or step.plan.skip_reason in {
            SkipReason.MAX_ORDER_NOTIONAL,
            SkipReason.MAX_POSITION_NOTIONAL,
            SkipReason.MAX_LEVERAGE,
        }
        # A follower on the other side goes flat against a reducing fill, and no further:
        # the rest of the way would trade against the leader's fill too.
        flattened = any(leg.side is not step.ctx.fill.side for leg in step.plan.legs)
        if capped or flattened or says_why(step, GATES | MINIMUMS | NOT_AGAINST_THE_FILL):
            continue
        if no_limit_in_band(step):
            continue
        assert abs(follower - target) <= half_step, step.plan


@given(scenario=scenarios(modes=(SizingMode.TARGET,), capped=False, minimums=False, moving=False))
def test_target_mode_in_sync_stays_within_one_step_of_the_target(scenario: Scenario) -> None:
    # Arrange
    step_size = Fraction(scenario.rules.qty_step)

    # Act
    steps = simulate(scenario)

    # Assert
    for step in steps:
        target = exact_target(scenario, step)
        assert abs(Fraction(step.follower_after) - target) < step_size
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
        held_notional = abs(Fraction(step.plan.follower_position_after)) * price
        for leg in step.plan.legs:
            if leg.reduce_only:
                continue
            if settings.max_order_notional is not None:
                assert Fraction(leg.qty) * price <= Fraction(settings.max_order_notional)
            if settings.max_position_notional is not None:
                assert held_notional <= Fraction(settings.max_position_notional)
            if settings.max_leverage is not None:
                exposure = Fraction(scenario.gross) + held_notional
                limit = Fraction(settings.max_leverage) * Fraction(step.follower_equity)
                assert exposure <= limit


@given(scenario=scenarios())
def test_every_leg_of_every_fill_is_recorded(scenario: Scenario) -> None:
    # Act
    steps = simulate(scenario)

    # Assert: something is recorded for every fill, and an opening leg the mode asked for
    # but held back (a reversal's, or one after closing an out-of-sync follower) has a reason.
    for step in steps:
        legs, result = step.plan.legs, step.plan
        assert legs or result.skip_reason is not None
        opening_fill = result.effect in (FillEffect.OPEN, FillEffect.ADD, FillEffect.REVERSE)
        if (
            opening_fill
            and legs
            and all(leg.reduce_only for leg in legs)
            and result.follower_position_after == 0
        ):
            assert result.skip_reason is not None, result


@given(scenario=scenarios())
def test_legs_are_whole_steps_and_well_formed(scenario: Scenario) -> None:
    # Act
    steps = simulate(scenario)

    # Assert
    for step in steps:
        legs, before = step.plan.legs, step.ctx.follower_position_before
        fill_side = step.ctx.fill.side
        assert len(legs) <= 2
        if len(legs) == 2:
            assert legs[0].reduce_only
            assert legs[0].qty == abs(before)
            assert not legs[1].reduce_only
        assert (not legs) == step.plan.skipped
        if not legs:
            assert step.plan.skip_reason is not None
            assert step.plan.follower_position_after == before
        for leg in legs:
            assert leg.qty > 0
            to_flat = leg.reduce_only and leg.qty == abs(before)
            # Whole steps, but for a close of an off-step position to exactly flat.
            assert (
                to_flat or (Fraction(leg.qty) / Fraction(scenario.rules.qty_step)).denominator == 1
            )
            if leg.reduce_only:
                assert Fraction(leg.qty) <= abs(before)
            # Never against the leader's fill, but to go flat.
            assert leg.side is fill_side or (to_flat and len(legs) == 1)
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
