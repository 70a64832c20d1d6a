"""Unit tests of app.domain.planner.plan: sizing modes, rounding, minimums, skip reasons."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal, localcontext

import pytest

from app.domain.model import Side, SkipReason
from app.domain.planner import (
    InstrumentRules,
    PlanContext,
    Rounding,
    SizingMode,
    SizingSettings,
    SubscriptionStatus,
    plan,
    target_position,
)
from app.domain.positions import FillEffect
from tests.unit.plan_builders import AT, SYMBOL, context, describe, equity, rules

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
PER_FILL = SizingSettings(mode=SizingMode.PER_FILL)
FIXED_HALF = SizingSettings(mode=SizingMode.FIXED_MULTIPLIER, multiplier=D("0.5"))
FIXED_1000 = SizingSettings(mode=SizingMode.FIXED_NOTIONAL, notional=D(1000))


# --- target mode (the default): ratio 0.1, step 0.001, price 50000 ---


@pytest.mark.parametrize(
    ("leader", "follower", "side", "qty", "legs", "after", "reason"),
    [
        pytest.param("0", "0", BUY, "2", ["buy 0.2"], "0.2", None, id="open-long"),
        pytest.param("0", "0", SELL, "3", ["sell 0.3"], "-0.3", None, id="open-short"),
        pytest.param("2", "0.2", BUY, "1", ["buy 0.1"], "0.3", None, id="add"),
        pytest.param("2", "0.19", BUY, "1", ["buy 0.11"], "0.3", None, id="add-catches-up"),
        pytest.param(
            "2", "0.2", SELL, "1", ["sell 0.1 reduce_only"], "0.1", None, id="partial-close"
        ),
        pytest.param(
            "-3", "-0.3", BUY, "1", ["buy 0.1 reduce_only"], "-0.2", None, id="partial-close-short"
        ),
        pytest.param("2", "0.2", SELL, "2", ["sell 0.2 reduce_only"], "0", None, id="full-close"),
        pytest.param(
            "2",
            "0.1234567",
            SELL,
            "2",
            ["sell 0.1234567 reduce_only"],
            "0",
            None,
            id="full-close-is-exact-off-step",
        ),
        pytest.param(
            "1",
            "0.1",
            SELL,
            "2",
            ["sell 0.1 reduce_only", "sell 0.1"],
            "-0.1",
            None,
            id="reversal-long-to-short",
        ),
        pytest.param(
            "-1",
            "-0.1",
            BUY,
            "4",
            ["buy 0.1 reduce_only", "buy 0.3"],
            "0.3",
            None,
            id="reversal-short-to-long",
        ),
        pytest.param("1", "0", SELL, "2", ["sell 0.1"], "-0.1", None, id="reversal-from-flat"),
        pytest.param(
            "2", "0.35", BUY, "1", [], "0.35", SkipReason.TARGET_REACHED, id="above-target-on-add"
        ),
        pytest.param(
            "2",
            "0.05",
            SELL,
            "1",
            [],
            "0.05",
            SkipReason.TARGET_REACHED,
            id="below-target-on-reduce",
        ),
        pytest.param(
            "2", "0", SELL, "1", [], "0", SkipReason.NO_POSITION_TO_REDUCE, id="reduce-while-flat"
        ),
        pytest.param(
            "2", "0", SELL, "2", [], "0", SkipReason.NO_POSITION_TO_REDUCE, id="close-while-flat"
        ),
        pytest.param(
            "2",
            "-0.1",
            SELL,
            "2",
            ["buy 0.1 reduce_only"],
            "0",
            None,
            id="close-flattens-a-follower-on-the-other-side",
        ),
        pytest.param(
            "0", "-0.1", BUY, "2", ["buy 0.1 reduce_only", "buy 0.2"], "0.2", None, id="stale-short"
        ),
    ],
)
def test_target_mode(
    leader: str,
    follower: str,
    side: Side,
    qty: str,
    legs: list[str],
    after: str,
    reason: SkipReason | None,
) -> None:
    # Arrange
    ctx = context(leader=leader, follower=follower, side=side, qty=qty)

    # Act
    result = plan(ctx)

    # Assert
    assert describe(result) == legs
    assert result.follower_position_after == D(after)
    assert result.skip_reason is reason


def test_target_mode_explains_the_order() -> None:
    # Arrange: a third of the leader's equity, 0.001 steps
    ctx = context(qty="1", leader_equity="3", follower_equity="1")

    # Act
    result = plan(ctx)

    # Assert
    assert describe(result) == ["buy 0.333"]
    assert result.symbol == SYMBOL
    assert result.effect is FillEffect.OPEN
    assert result.ratio == D("0." + "3" * 80)
    assert result.target == result.raw_qty == D("0." + "3" * 80)
    assert result.residue == D("0.000" + "3" * 77)
    assert (result.leader_position_before, result.leader_position_after) == (D(0), D(1))
    assert (result.follower_position_before, result.follower_position_after) == (D(0), D("0.333"))
    assert result.clamps == ()
    assert result.status_change is None
    assert not result.skipped


def test_target_mode_carries_the_residue_to_the_next_fill() -> None:
    # Arrange: step 0.1, so half a step is left behind by the first fill
    inst = rules("0.1")
    first = context(qty="0.5", inst=inst)

    # Act
    skipped = plan(first)
    caught_up = plan(context(leader="0.5", qty="0.5", follower="0", inst=inst))

    # Assert
    assert skipped.skip_reason is SkipReason.ROUNDS_TO_ZERO
    assert skipped.target == D("0.05")
    assert describe(caught_up) == ["buy 0.1"]


def test_a_reversal_rounds_the_new_side_toward_zero() -> None:
    # Arrange: a third of the leader's equity
    ctx = context(
        leader="1", follower="0.333", side=SELL, qty="2", leader_equity="3", follower_equity="1"
    )

    # Act
    result = plan(ctx)

    # Assert
    assert describe(result) == ["sell 0.333 reduce_only", "sell 0.333"]
    assert result.effect is FillEffect.REVERSE
    assert result.follower_position_after == D("-0.333")


def test_target_mode_multiplier() -> None:
    # Act
    result = plan(context(settings=SizingSettings(multiplier=D("2.5"))))

    # Assert
    assert describe(result) == ["buy 0.5"]


def test_a_full_close_needs_no_equity() -> None:
    # Act
    result = plan(
        context(leader="2", follower="0.2", side=SELL, leader_equity=None, follower_equity=None)
    )

    # Assert
    assert describe(result) == ["sell 0.2 reduce_only"]
    assert result.target == 0


def test_a_reversal_without_equity_still_closes() -> None:
    # Act
    result = plan(context(leader="1", follower="0.1", side=SELL, follower_equity=None))

    # Assert
    assert describe(result) == ["sell 0.1 reduce_only"]
    assert result.skip_reason is SkipReason.NO_EQUITY
    assert result.follower_position_after == 0


# --- per-fill modes: proportional reductions ---


@pytest.mark.parametrize(
    ("settings", "leader", "follower", "side", "qty", "legs"),
    [
        pytest.param(PER_FILL, "0", "0", BUY, "2", ["buy 0.2"], id="per-fill-open"),
        pytest.param(PER_FILL, "2", "0.25", BUY, "1", ["buy 0.1"], id="per-fill-add-ignores-drift"),
        pytest.param(
            PER_FILL, "2", "0.25", SELL, "1", ["sell 0.125 reduce_only"], id="per-fill-half"
        ),
        pytest.param(
            PER_FILL, "3", "0.3", SELL, "1", ["sell 0.1 reduce_only"], id="per-fill-third-exact"
        ),
        pytest.param(
            PER_FILL, "2", "0.25", SELL, "2", ["sell 0.25 reduce_only"], id="per-fill-close"
        ),
        pytest.param(
            PER_FILL,
            "2",
            "0.25",
            SELL,
            "3",
            ["sell 0.25 reduce_only", "sell 0.1"],
            id="per-fill-reversal",
        ),
        pytest.param(FIXED_HALF, "0", "0", SELL, "2", ["sell 1"], id="fixed-multiplier-open"),
        pytest.param(
            FIXED_HALF, "2", "1", SELL, "0.5", ["sell 0.25 reduce_only"], id="fixed-mult-quarter"
        ),
        pytest.param(
            FIXED_HALF,
            "2",
            "1",
            SELL,
            "3",
            ["sell 1 reduce_only", "sell 0.5"],
            id="fixed-multiplier-reversal",
        ),
        pytest.param(FIXED_1000, "0", "0", BUY, "2", ["buy 0.02"], id="fixed-notional-open"),
        pytest.param(FIXED_1000, "2", "0.02", BUY, "5", ["buy 0.02"], id="fixed-notional-add"),
        pytest.param(
            FIXED_1000, "2", "0.04", SELL, "1", ["sell 0.02 reduce_only"], id="fixed-notional-half"
        ),
        pytest.param(
            FIXED_1000,
            "2",
            "0.04",
            SELL,
            "2.5",
            ["sell 0.04 reduce_only", "sell 0.02"],
            id="fixed-notional-reversal",
        ),
    ],
)
def test_per_fill_modes(
    settings: SizingSettings, leader: str, follower: str, side: Side, qty: str, legs: list[str]
) -> None:
    # Arrange
    ctx = context(settings=settings, leader=leader, follower=follower, side=side, qty=qty)

    # Act
    result = plan(ctx)

    # Assert
    assert describe(result) == legs
    assert result.skip_reason is None
    assert result.target is None


@pytest.mark.parametrize(
    ("rounding", "legs", "residue"),
    [
        pytest.param(Rounding.CONSERVATIVE, ["sell 0.13 reduce_only"], "-0.005", id="up"),
        pytest.param(Rounding.NEAREST, ["sell 0.12 reduce_only"], "0.005", id="nearest-even"),
    ],
)
def test_per_fill_reduction_rounds_as_the_policy_says(
    rounding: Rounding, legs: list[str], residue: str
) -> None:
    # Arrange: half of 0.25, in 0.01 steps
    settings = SizingSettings(mode=SizingMode.PER_FILL, rounding=rounding)

    # Act
    result = plan(
        context(
            settings=settings, leader="2", follower="0.25", side=SELL, qty="1", inst=rules("0.01")
        )
    )

    # Assert
    assert describe(result) == legs
    assert result.raw_qty == D("0.125")
    assert result.residue == D(residue)


@pytest.mark.parametrize("settings", [FIXED_HALF, FIXED_1000], ids=["multiplier", "notional"])
def test_fixed_modes_need_no_equity(settings: SizingSettings) -> None:
    # Act
    result = plan(context(settings=settings, leader_equity=None, follower_equity=None))

    # Assert
    assert result.legs
    assert result.ratio is None


def test_per_fill_reduction_with_a_follower_on_the_other_side_closes_it() -> None:
    # Act: the leader reduces its long; the follower holds a short (a manual trade, say)
    result = plan(context(settings=PER_FILL, leader="2", follower="-0.1", side=SELL, qty="1"))

    # Assert: flat, against the fill's direction: going flat is always allowed
    assert describe(result) == ["buy 0.1 reduce_only"]
    assert result.skip_reason is None
    assert result.follower_position_after == 0


def test_per_fill_reduction_with_a_flat_follower_does_nothing() -> None:
    # Act
    result = plan(context(settings=PER_FILL, leader="2", follower="0", side=SELL, qty="1"))

    # Assert
    assert result.skip_reason is SkipReason.NO_POSITION_TO_REDUCE


def test_per_fill_out_of_sync_follower_closes_first_and_close_only_drops_the_rest() -> None:
    # Arrange: the leader opens while the follower still holds a short (e.g. left by a pause)
    settings = SizingSettings(mode=SizingMode.PER_FILL, status=SubscriptionStatus.CLOSE_ONLY)

    # Act
    active = plan(context(settings=PER_FILL, follower="-0.1", qty="3"))
    close_only = plan(context(settings=settings, follower="-0.1", qty="3"))

    # Assert
    assert describe(active) == ["buy 0.1 reduce_only", "buy 0.3"]
    assert describe(close_only) == ["buy 0.1 reduce_only"]
    assert close_only.skip_reason is SkipReason.CLOSE_ONLY


def test_per_fill_reduction_too_small_to_round_is_skipped_by_nearest() -> None:
    # Arrange
    settings = SizingSettings(mode=SizingMode.PER_FILL, rounding=Rounding.NEAREST)

    # Act: a tenth of 0.002 is under half a 0.001 step
    result = plan(context(settings=settings, leader="1", follower="0.002", side=SELL, qty="0.1"))

    # Assert
    assert result.skip_reason is SkipReason.ROUNDS_TO_ZERO
    assert result.raw_qty == D("0.0002")


def test_per_fill_reduction_too_small_to_round_takes_a_step_when_conservative() -> None:
    # Act: a tenth of 0.002 rounds up to one 0.001 step
    result = plan(context(settings=PER_FILL, leader="1", follower="0.002", side=SELL, qty="0.1"))

    # Assert
    assert describe(result) == ["sell 0.001 reduce_only"]


# --- skip reasons ---


@pytest.mark.parametrize(
    ("ctx", "reason"),
    [
        pytest.param(context(leader_equity=None), SkipReason.NO_EQUITY, id="no-leader-equity"),
        pytest.param(context(follower_equity=None), SkipReason.NO_EQUITY, id="no-follower-equity"),
        pytest.param(context(leader_equity="0"), SkipReason.NO_EQUITY, id="zero-leader-equity"),
        pytest.param(context(follower_equity="-5"), SkipReason.NO_EQUITY, id="negative-equity"),
        pytest.param(
            context(
                leader_equity=equity("100000", 1, AT - timedelta(seconds=61)),
                settings=SizingSettings(max_equity_age_s=60),
            ),
            SkipReason.STALE_EQUITY,
            id="stale-leader-equity",
        ),
        pytest.param(
            context(
                leader_equity=equity("100000", 1, AT - timedelta(seconds=61)),
                follower_equity=None,
                settings=SizingSettings(max_equity_age_s=60),
            ),
            SkipReason.NO_EQUITY,
            id="missing-beats-stale",
        ),
        pytest.param(
            context(
                follower_equity=equity("10000", 2, AT - timedelta(seconds=61)),
                settings=SizingSettings(mode=SizingMode.PER_FILL, max_equity_age_s=60),
            ),
            SkipReason.STALE_EQUITY,
            id="stale-follower-equity-per-fill",
        ),
        pytest.param(
            context(qty="0.009", follower_equity="10"),
            SkipReason.ROUNDS_TO_ZERO,
            id="rounds-to-zero",
        ),
        pytest.param(
            context(inst=rules(min_qty="0.5")), SkipReason.BELOW_MIN_QTY, id="below-min-qty"
        ),
        pytest.param(
            context(inst=rules(min_notional="10000.01")),
            SkipReason.BELOW_MIN_NOTIONAL,
            id="below-min-notional",
        ),
        pytest.param(
            context(leader="2", follower="0.2", side=SELL, qty="1", inst=rules(min_qty="0.2")),
            SkipReason.BELOW_MIN_QTY,
            id="partial-close-below-min-qty",
        ),
        pytest.param(
            context(settings=SizingSettings(allow=frozenset({"ETHUSDT"}))),
            SkipReason.SYMBOL_NOT_ALLOWED,
            id="symbol-not-allowed",
        ),
        pytest.param(
            context(settings=SizingSettings(deny=frozenset({SYMBOL}))),
            SkipReason.SYMBOL_DENIED,
            id="symbol-denied",
        ),
        pytest.param(
            context(settings=SizingSettings(allow=frozenset({SYMBOL}), deny=frozenset({SYMBOL}))),
            SkipReason.SYMBOL_DENIED,
            id="deny-wins-over-allow",
        ),
        pytest.param(
            context(
                leader="2",
                follower="0.2",
                side=SELL,
                settings=SizingSettings(status=SubscriptionStatus.PAUSED),
            ),
            SkipReason.SUBSCRIPTION_PAUSED,
            id="paused-sends-not-even-a-close",
        ),
        pytest.param(
            context(
                settings=SizingSettings(status=SubscriptionStatus.CLOSE_ONLY), leader_equity=None
            ),
            SkipReason.CLOSE_ONLY,
            id="close-only-before-equity",
        ),
        pytest.param(
            context(leader="2", side=SELL, qty="1"),
            SkipReason.NO_POSITION_TO_REDUCE,
            id="no-position-to-reduce",
        ),
        pytest.param(
            context(leader="2", follower="0.3", qty="1"),
            SkipReason.TARGET_REACHED,
            id="target-reached",
        ),
    ],
)
def test_skip_reasons(ctx: PlanContext, reason: SkipReason) -> None:
    # Act
    result = plan(ctx)

    # Assert
    assert result.skip_reason is reason
    assert result.legs == ()
    assert result.skipped
    assert result.follower_position_after == ctx.follower_position_before


def test_equity_exactly_at_the_age_limit_is_fresh() -> None:
    # Arrange: one reading exactly max age, the other stamped in the future
    ctx = context(
        leader_equity=equity("100000", 1, AT - timedelta(seconds=60)),
        follower_equity=equity("10000", 2, AT + timedelta(seconds=5)),
        settings=SizingSettings(max_equity_age_s=60),
    )

    # Act
    result = plan(ctx)

    # Assert
    assert describe(result) == ["buy 0.2"]


# --- minimums: never rounded up, except a close to exactly flat ---


@pytest.mark.parametrize(
    "inst",
    [
        pytest.param(rules(min_qty="1"), id="under-min-qty"),
        pytest.param(rules(min_notional="100000"), id="under-min-notional"),
        pytest.param(rules("0.1"), id="under-one-step"),
    ],
)
def test_a_dust_position_can_always_be_closed(inst: InstrumentRules) -> None:
    # Act
    result = plan(context(leader="1", follower="0.003", side=SELL, qty="1", inst=inst))

    # Assert
    assert describe(result) == ["sell 0.003 reduce_only"]
    assert result.skip_reason is None
    assert result.follower_position_after == 0


def test_a_reversal_whose_new_side_is_too_small_only_closes() -> None:
    # Act
    result = plan(
        context(leader="1", follower="0.1", side=SELL, qty="1.5", inst=rules(min_qty="0.1"))
    )

    # Assert
    assert describe(result) == ["sell 0.1 reduce_only"]
    assert result.skip_reason is SkipReason.BELOW_MIN_QTY
    assert result.follower_position_after == 0


# --- arithmetic ---


def test_plan_ignores_a_narrow_ambient_context() -> None:
    # Arrange: 20-digit equities, 3-digit ambient precision
    ctx = context(
        qty="1",
        leader_equity="30000000000000000000",
        follower_equity="10000000000000000001",
        inst=rules("1E-20"),
    )

    # Act
    with localcontext() as narrow:
        narrow.prec = 3
        result = plan(ctx)

    # Assert
    assert describe(result) == ["buy 0.33333333333333333336"]


def test_target_position_multiplies_first() -> None:
    # Act / Assert
    assert target_position(D(1), D(7), D(1), D(7)) == 1
    assert target_position(D(-2), D(100000), D(10000), D(1)) == D("-0.2")
    with pytest.raises(ValueError, match="equit"):
        target_position(D(1), D(0), D(1), D(1))


# --- sizing.rounding, target mode: the README's worked example (SOLUSDT in 0.1 steps) ---


@pytest.mark.parametrize(
    ("rounding", "orders"),
    [
        pytest.param(
            Rounding.CONSERVATIVE,
            [["sell 0.1 reduce_only"], [], ["buy 0.1"]],
            id="conservative-never-above-the-target",
        ),
        pytest.param(
            Rounding.NEAREST,
            [[], ["sell 0.1 reduce_only"], ["buy 0.1"]],
            id="nearest-within-half-a-step",
        ),
    ],
)
def test_target_mode_rounding_policy_worked_example(
    rounding: Rounding, orders: list[list[str]]
) -> None:
    # Arrange: the leader holds 20 SOL, the follower a hundredth of its equity and 0.2 SOL;
    # the leader sells 3 (target 0.17), sells 3 (target 0.14), then buys 6 (target 0.2).
    settings = SizingSettings(rounding=rounding)
    inst = rules("0.1", symbol=SYMBOL)
    leader, follower = D(20), D("0.2")
    got = []

    # Act
    for side, qty in ((SELL, "3"), (SELL, "3"), (BUY, "6")):
        result = plan(
            context(
                settings=settings,
                inst=inst,
                leader=str(leader),
                follower=str(follower),
                side=side,
                qty=qty,
                price="150",
                follower_equity="1000",
            )
        )
        got.append(describe(result))
        leader, follower = result.leader_position_after, result.follower_position_after
        target = result.target

        # Assert: each policy's promise, after every fill
        assert target is not None
        if rounding is Rounding.CONSERVATIVE:
            assert abs(follower) <= abs(target)
        else:
            assert abs(follower - target) <= inst.qty_step / 2

    assert got == orders


def test_conservative_reduction_held_back_by_a_minimum_says_so() -> None:
    # Arrange: 0.2 held, target 0.17: the 0.1 step it rounds up to is under min_qty 0.15
    inst = rules("0.1", min_qty="0.15")

    # Act
    result = plan(
        context(
            inst=inst,
            leader="20",
            follower="0.2",
            side=SELL,
            qty="3",
            price="150",
            follower_equity="1000",
        )
    )

    # Assert: over the target only with the minimum's reason recorded
    assert describe(result) == []
    assert result.skip_reason is SkipReason.BELOW_MIN_QTY
    assert result.target == D("0.17")


def test_a_reversal_whose_opening_leg_is_held_back_keeps_the_reason() -> None:
    # Act: the follower's short of 0.001 closes whole; the new 0.001 long is under min_qty
    result = plan(
        context(leader="-0.01", follower="-0.001", side=BUY, qty="0.02", inst=rules(min_qty="0.01"))
    )

    # Assert
    assert describe(result) == ["buy 0.001 reduce_only"]
    assert result.skip_reason is SkipReason.BELOW_MIN_QTY
