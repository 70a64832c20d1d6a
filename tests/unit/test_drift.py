"""app.domain.drift: examples, then hypothesis properties of the resync order and plan."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain import drift
from app.domain.model import Side, SkipReason
from app.domain.plan_model import DriftMode, Plan, PlanContext, SizingSettings, SubscriptionStatus
from app.domain.planner import planning
from app.domain.positions import sign
from app.sizing.books import settings_from_row
from tests.unit.plan_builders import AT, equity, make_fill, rules

D = Decimal
STEP = D("0.001")


# -- reconcile ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [DriftMode.ALERT, DriftMode.RESYNC])
def test_a_hand_trade_moves_the_tracked_position_under_alert_and_resync(mode: DriftMode) -> None:
    # Act: sizing tracks 0.1, the follower bought 0.4 more by hand
    correction = drift.reconcile(mode, actual=D("0.5"), tracked=D("0.1"), adopted=D(0))

    # Assert
    assert correction == drift.Correction(tracked=D("0.4"), adopted=D(0))


def test_a_hand_trade_is_adopted_under_adopt() -> None:
    correction = drift.reconcile(DriftMode.ADOPT, D("0.5"), tracked=D("0.1"), adopted=D("0.1"))

    assert correction == drift.Correction(tracked=D(0), adopted=D("0.3"))


def test_an_adopted_position_closed_by_hand_is_given_back() -> None:
    correction = drift.reconcile(DriftMode.ADOPT, D("0.1"), tracked=D("0.1"), adopted=D("0.3"))

    assert correction.adopted == D("-0.3")


# -- assess -------------------------------------------------------------------------------


def test_a_drift_counts_beyond_a_step_and_the_tolerance() -> None:
    # 0.4 BTC at 50,000 on 10,000 equity: 2.0 of equity
    measured = drift.assess(D("0.5"), D("0.1"), D(0), STEP, D(50000), D(10000), D("0.01"))

    assert measured == drift.Assessment(D("0.4"), D(2), counts=True)


@pytest.mark.parametrize(
    ("actual", "tolerance"),
    [
        ("0.101", "0"),  # one step: within the lot step
        ("0.103", "0.02"),  # 3 steps, 0.015 of equity: within the tolerance
    ],
)
def test_a_small_drift_does_not_count(actual: str, tolerance: str) -> None:
    measured = drift.assess(D(actual), D("0.1"), D(0), STEP, D(50000), D(10000), D(tolerance))

    assert not measured.counts


def test_an_adopted_position_is_not_drift() -> None:
    measured = drift.assess(D("0.5"), D("0.1"), D("0.4"), STEP, D(50000), D(10000), D(0))

    assert (measured.drift, measured.counts) == (D(0), False)


def test_a_drift_needs_a_price_and_an_equity() -> None:
    with pytest.raises(ValueError, match="equity"):
        drift.assess(D(1), D(0), D(0), STEP, D(50000), D(0), D(0))


# -- resync_qty ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "target", "leader", "expected"),
    [
        ("0.5", "0.1", "1", "-0.4"),  # bought by hand: sold back to the target
        ("0", "0.1", "1", "0.1"),  # an order rejected: sent again
        ("0.1", "0.1", "1", "0"),
        ("0.1005", "0.1", "1", "-0.001"),  # less than a step over: reduced to under it
        ("0.5", "0.1005", "1", "-0.4"),  # a reduction rounds up: never left more exposed
        ("0.0995", "0.1", "1", "0"),  # less than a step under: left there
        ("0.1005", "0", "0", "-0.1"),  # to flat: whole steps, as far as they go
        ("-0.2", "0.1", "1", "0.3"),  # sold through zero by hand: back to the leader's side
        # a target on the other side of the leader (stale): stops at flat
        ("0.3", "-0.1", "1", "-0.3"),
        ("-0.3", "0.1", "-1", "0.3"),
        ("0.2", "-0.1", "0", "-0.2"),  # a flat leader: never through zero
    ],
)
def test_resync_qty(current: str, target: str, leader: str, expected: str) -> None:
    assert drift.resync_qty(D(current), D(target), D(leader), STEP) == D(expected)


def test_a_resync_is_due_after_its_interval() -> None:
    assert drift.due(None, AT, 60)
    assert not drift.due(AT, AT + timedelta(seconds=59), 60)
    assert drift.due(AT, AT + timedelta(seconds=60), 60)


# -- resync_plan --------------------------------------------------------------------------


def _ctx(
    current: str,
    leader: str = "1",
    *,
    status: SubscriptionStatus = SubscriptionStatus.ACTIVE,
    min_qty: str = "0",
    leader_equity: str | None = "100000",
) -> PlanContext:
    return PlanContext(
        fill=make_fill(Side.BUY, "1", "50000"),
        leader_position_before=D(leader),
        leader_equity=equity(leader_equity) if leader_equity else None,
        follower_equity=equity("10000", 2),
        now=AT,
        follower_position_before=D(current),
        follower_gross_exposure=D(0),
        instrument=rules("0.001", min_qty=min_qty),
        settings=SizingSettings(status=status, drift=DriftMode.RESYNC),
    )


def _plan(ctx: PlanContext) -> Plan:
    with planning():
        return drift.resync_plan(ctx)


def test_a_follower_above_its_target_is_sold_back_reduce_only() -> None:
    plan = _plan(_ctx("0.5"))

    assert [(leg.side, leg.qty, leg.reduce_only) for leg in plan.legs] == [
        (Side.SELL, D("0.4"), True)
    ]
    assert (plan.target, plan.follower_position_after) == (D("0.1"), D("0.1"))


def test_a_short_follower_is_closed_then_opened_on_the_leaders_side() -> None:
    plan = _plan(_ctx("-0.2"))

    assert [(leg.side, leg.qty, leg.reduce_only) for leg in plan.legs] == [
        (Side.BUY, D("0.2"), True),
        (Side.BUY, D("0.1"), False),
    ]


@pytest.mark.parametrize(
    ("ctx", "reason"),
    [
        (_ctx("0.1"), SkipReason.TARGET_REACHED),
        (_ctx("0", leader_equity=None), SkipReason.NO_EQUITY),
        (_ctx("0", status=SubscriptionStatus.PAUSED), SkipReason.SUBSCRIPTION_PAUSED),
        (_ctx("0", status=SubscriptionStatus.CLOSE_ONLY), SkipReason.CLOSE_ONLY),
        (_ctx("0", min_qty="0.2"), SkipReason.BELOW_MIN_QTY),
    ],
)
def test_a_resync_with_nothing_to_send_says_why(ctx: PlanContext, reason: SkipReason) -> None:
    plan = _plan(ctx)

    assert (plan.legs, plan.skip_reason) == ((), reason)


def test_close_only_still_reduces() -> None:
    plan = _plan(_ctx("0.5", status=SubscriptionStatus.CLOSE_ONLY))

    assert [leg.reduce_only for leg in plan.legs] == [True]


# -- properties ---------------------------------------------------------------------------

steps = st.sampled_from([D("0.001"), D("0.01"), D("1"), D("0.5")])
amounts = st.decimals(min_value=-1000, max_value=1000, places=4, allow_nan=False)


@given(current=amounts, target=amounts, leader=amounts, step=steps)
def test_resync_qty_properties(
    current: Decimal, target: Decimal, leader: Decimal, step: Decimal
) -> None:
    qty = drift.resync_qty(current, target, leader, step)
    after = current + qty

    # Whole steps, toward the target; beyond it only by a reduction rounded up (never past
    # flat), so that the follower is never left more exposed than its target.
    assert qty % step == 0
    assert qty == 0 or sign(qty) == sign(target - current)
    if abs(qty) > abs(target - current):
        assert abs(after) < abs(current)
        assert sign(after) != -sign(current)
        assert abs(qty) - abs(target - current) < step
    reducing = sign(target) != -sign(current) and abs(target) < abs(current)
    if reducing and abs(current) % step == 0:
        assert abs(after) <= abs(target)
    # Never left on the side opposite the leader by an order against it; never through zero
    # while the leader is flat.
    if qty and sign(qty) == -sign(leader):
        assert sign(after) != -sign(leader)
    if sign(leader) == 0:
        assert sign(after) != -sign(current) or not after


@given(
    current=amounts,
    leader=amounts,
    step=steps,
    tolerance=st.decimals(min_value=0, max_value=D("0.99"), places=3),
    price=st.decimals(min_value=1, max_value=100000, places=2),
)
def test_a_counted_drift_is_beyond_a_step_and_the_tolerance(
    current: Decimal, leader: Decimal, step: Decimal, tolerance: Decimal, price: Decimal
) -> None:
    measured = drift.assess(current, leader, D(0), step, price, D(10000), tolerance)

    if measured.counts:
        assert abs(measured.drift) > step
        assert abs(measured.drift) * price > tolerance * D(10000)


@given(current=amounts, leader=amounts)
def test_a_resync_plan_ends_on_the_leaders_side_within_its_target(
    current: Decimal, leader: Decimal
) -> None:
    plan = _plan(_ctx(str(current), str(leader)))

    assert plan.target is not None
    sent = sum(((1 if leg.side is Side.BUY else -1) * leg.qty for leg in plan.legs), D(0))
    assert plan.follower_position_after == current + sent
    assert abs(plan.target - plan.follower_position_after) <= abs(plan.target - current)
    if sign(sent) == -sign(leader) != 0:
        assert sign(plan.follower_position_after) != -sign(leader)
    for leg in plan.legs:
        assert leg.qty > 0
        assert leg.qty % D("0.001") == 0


# -- settings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [("drift_tolerance", D(1)), ("drift_tolerance", D(-1)), ("drift_min_interval_s", -1.0)],
)
def test_invalid_drift_settings_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"^{field}: "):
        SizingSettings(**{field: value})  # type: ignore[arg-type]


def test_stored_drift_settings_are_read_back() -> None:
    settings = settings_from_row(
        D(1), "active", {"drift": "adopt", "drift_tolerance": "0.02", "drift_min_interval_s": 30}
    )

    assert (settings.drift, settings.drift_tolerance, settings.drift_min_interval_s) == (
        DriftMode.ADOPT,
        D("0.02"),
        30.0,
    )
    assert settings_from_row(D(1), "active", {}).drift is DriftMode.ALERT


# -- split --------------------------------------------------------------------------------


def test_a_hand_close_is_shared_rather_than_flipping_the_oldest() -> None:
    # Two subscriptions long 0.1 each, the venue flat: both go flat (not -0.1 and 0.1).
    assert drift.split(D("-0.2"), [D("0.1"), D("0.1")]) == [D("-0.1"), D("-0.1")]
    # A hand buy goes to the oldest, on the correction's side.
    assert drift.split(D("0.3"), [D("0.1"), D("0.1")]) == [D("0.3"), D("0")]
    # Past every position: the rest to the oldest (no subscription is on that side) ...
    assert drift.split(D("-0.3"), [D("0.1"), D("0.1")]) == [D("-0.2"), D("-0.1")]
    # ... or to one that is flat.
    assert drift.split(D("-0.3"), [D("0.1"), D("0")]) == [D("-0.1"), D("-0.2")]


@given(gap=amounts, tracked=st.lists(amounts, min_size=1, max_size=5))
def test_split_properties(gap: Decimal, tracked: list[Decimal]) -> None:
    moves = drift.split(gap, tracked)
    after = [qty + move for qty, move in zip(tracked, moves, strict=True)]

    # The whole correction, and no position pushed past flat while another could take it.
    assert sum(moves, D(0)) == gap
    flipped = [
        i for i, (a, b) in enumerate(zip(tracked, after, strict=True)) if sign(a) == -sign(b) != 0
    ]
    if any(sign(qty) in (0, sign(gap)) for qty in tracked):
        assert flipped == []
    else:
        assert flipped in ([], [0])
