"""Unit tests of app.domain.planner.plan: the per-subscription controls (examples)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from app.domain.model import Side, SkipReason
from app.domain.plan_model import OrderType
from app.domain.planner import (
    InstrumentRules,
    SizingMode,
    SizingSettings,
    SubscriptionStatus,
    plan,
)
from tests.unit.plan_builders import AT, SYMBOL, context, describe, equity, rules

D = Decimal
BUY, SELL = Side.BUY, Side.SELL

# --- caps: clamp the opening part only ---


@pytest.mark.parametrize(
    ("settings", "gross", "leader", "follower", "qty", "legs", "clamps"),
    [
        pytest.param(
            SizingSettings(max_order_notional=D(5000)),
            "0", "0", "0", "2", ["buy 0.1"], ("max_order_notional",),
            id="max-order-notional",
        ),
        pytest.param(
            SizingSettings(max_order_notional=D(5001)),
            "0", "0", "0", "2", ["buy 0.1"], ("max_order_notional",),
            id="re-rounded-after-clamp",
        ),
        pytest.param(
            SizingSettings(max_order_notional=D(10000)),
            "0", "0", "0", "2", ["buy 0.2"], (),
            id="cap-exactly-met-is-no-clamp",
        ),
        pytest.param(
            SizingSettings(max_order_notional=D(20000)),
            "0", "0", "0", "2", ["buy 0.2"], (),
            id="cap-not-reached",
        ),
        pytest.param(
            SizingSettings(max_position_notional=D(12000)),
            "0", "2", "0.2", "2", ["buy 0.04"], ("max_position_notional",),
            id="max-position-notional",
        ),
        pytest.param(
            SizingSettings(max_leverage=D(2)),
            "5000", "0", "0", "5", ["buy 0.3"], ("max_leverage",),
            id="max-leverage",
        ),
        pytest.param(
            SizingSettings(max_order_notional=D(4000), max_position_notional=D(3000)),
            "0", "0", "0", "2", ["buy 0.06"], ("max_order_notional", "max_position_notional"),
            id="caps-in-order",
        ),
    ],
)  # fmt: skip
def test_caps_clamp_the_opening_quantity(
    settings: SizingSettings,
    gross: str,
    leader: str,
    follower: str,
    qty: str,
    legs: list[str],
    clamps: tuple[str, ...],
) -> None:
    # Arrange
    ctx = context(settings=settings, gross=gross, leader=leader, follower=follower, qty=qty)

    # Act
    result = plan(ctx)

    # Assert
    assert describe(result) == legs
    assert result.clamps == clamps
    assert result.skip_reason is None


def test_caps_never_clamp_a_close() -> None:
    # Arrange: the close is 5000 of notional, the cap 2500
    settings = SizingSettings(max_order_notional=D(2500), max_position_notional=D(1))
    ctx = context(settings=settings, leader="1", follower="0.1", side=SELL, qty="2")

    # Act
    result = plan(ctx)

    # Assert: the opening leg is cut to nothing by the position cap; the close goes in full
    assert describe(result) == ["sell 0.1 reduce_only"]
    assert result.skip_reason is SkipReason.MAX_POSITION_NOTIONAL
    assert result.clamps == ("max_order_notional", "max_position_notional")


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        pytest.param(
            SizingSettings(max_order_notional=D(49)), SkipReason.MAX_ORDER_NOTIONAL, id="order"
        ),
        pytest.param(
            SizingSettings(max_position_notional=D(10000)),
            SkipReason.MAX_POSITION_NOTIONAL,
            id="position-full",
        ),
        pytest.param(SizingSettings(max_leverage=D(1)), SkipReason.MAX_LEVERAGE, id="leverage"),
    ],
)
def test_a_cap_with_no_room_skips_with_its_name(
    settings: SizingSettings, reason: SkipReason
) -> None:
    # Arrange: the follower holds 0.2 (10000 of notional) on 10000 of equity
    ctx = context(settings=settings, leader="2", follower="0.2", qty="2")

    # Act
    result = plan(ctx)

    # Assert
    assert result.legs == ()
    assert result.skip_reason is reason
    assert result.clamps == (reason.value,)


@pytest.mark.parametrize(
    ("follower_equity", "reason"),
    [
        pytest.param(None, SkipReason.NO_EQUITY, id="missing"),
        pytest.param(
            equity("10000", 2, AT - timedelta(seconds=61)), SkipReason.STALE_EQUITY, id="stale"
        ),
        pytest.param("0", SkipReason.NO_EQUITY, id="zero"),
    ],
)
def test_max_leverage_fails_closed_without_follower_equity(
    follower_equity: str | None, reason: SkipReason
) -> None:
    # Arrange: fixed sizing needs no equity, but the leverage cap does
    settings = SizingSettings(
        mode=SizingMode.FIXED_MULTIPLIER, max_leverage=D(3), max_equity_age_s=60
    )

    # Act
    result = plan(context(settings=settings, follower_equity=follower_equity))

    # Assert
    assert result.skip_reason is reason
    assert result.legs == ()


# --- max_slippage: opening legs become IOC limits, closes stay market ---


@pytest.mark.parametrize(
    ("side", "price_step", "legs"),
    [
        pytest.param(BUY, "0.1", ["buy 0.2 limit 50250 IOC"], id="buy-rounds-down"),
        pytest.param(SELL, "0.1", ["sell 0.2 limit 49750.1 IOC"], id="sell-rounds-up"),
        pytest.param(BUY, None, ["buy 0.2 limit 50250.07035 IOC"], id="no-price-step"),
        pytest.param(SELL, "0.00001", ["sell 0.2 limit 49750.06965 IOC"], id="on-the-step"),
    ],
)
def test_max_slippage_bounds_the_price(side: Side, price_step: str | None, legs: list[str]) -> None:
    # Arrange
    settings = SizingSettings(max_slippage=D("0.005"))
    inst = rules(price_step=price_step)

    # Act
    result = plan(context(side=side, price="50000.07", settings=settings, inst=inst))

    # Assert
    assert describe(result) == legs
    assert result.legs[0].order_type is OrderType.LIMIT


def test_max_slippage_leaves_closes_at_market() -> None:
    # Arrange
    settings = SizingSettings(max_slippage=D("0.01"))

    # Act
    reversal = plan(context(leader="1", follower="0.1", side=SELL, qty="2", settings=settings))
    reduce = plan(context(leader="1", follower="0.1", side=SELL, qty="0.5", settings=settings))

    # Assert
    assert describe(reversal) == ["sell 0.1 reduce_only", "sell 0.1 limit 49500 IOC"]
    assert describe(reduce) == ["sell 0.05 reduce_only"]
    assert reduce.legs[0].order_type is OrderType.MARKET
    assert reduce.legs[0].time_in_force is None


def test_a_price_step_coarser_than_the_band_leaves_no_buy_price() -> None:
    # Act
    result = plan(
        context(price="0.5", settings=SizingSettings(max_slippage=D(0)), inst=rules(price_step="1"))
    )

    # Assert
    assert result.skip_reason is SkipReason.ROUNDS_TO_ZERO


# --- status and equity floor ---


def test_close_only_sends_reductions_and_drops_openings() -> None:
    # Arrange
    settings = SizingSettings(status=SubscriptionStatus.CLOSE_ONLY)

    # Act
    add = plan(context(settings=settings, leader="2", follower="0.2", qty="1"))
    reduce = plan(context(settings=settings, leader="2", follower="0.2", side=SELL, qty="1"))
    reversal = plan(context(settings=settings, leader="2", follower="0.2", side=SELL, qty="3"))

    # Assert
    assert add.skip_reason is SkipReason.CLOSE_ONLY
    assert describe(reduce) == ["sell 0.1 reduce_only"]
    assert describe(reversal) == ["sell 0.2 reduce_only"]
    assert reversal.skip_reason is SkipReason.CLOSE_ONLY
    assert reversal.status_change is None


def test_an_equity_floor_breach_turns_the_subscription_close_only() -> None:
    # Arrange: the follower holds 10000 of equity, under a floor of 12000
    settings = SizingSettings(equity_floor=D(12000))

    # Act
    add = plan(context(settings=settings, leader="2", follower="0.2", qty="1"))
    reduce = plan(context(settings=settings, leader="2", follower="0.2", side=SELL, qty="1"))

    # Assert
    assert add.skip_reason is SkipReason.CLOSE_ONLY
    assert add.status_change is SubscriptionStatus.CLOSE_ONLY
    assert add.status_reason == "equity_floor"
    assert describe(reduce) == ["sell 0.1 reduce_only"]
    assert reduce.status_change is SubscriptionStatus.CLOSE_ONLY


@pytest.mark.parametrize(
    ("floor", "status"),
    [
        pytest.param("10000", SubscriptionStatus.ACTIVE, id="at-the-floor"),
        pytest.param("12000", SubscriptionStatus.CLOSE_ONLY, id="already-close-only"),
        pytest.param("12000", SubscriptionStatus.PAUSED, id="paused"),
    ],
)
def test_no_status_change(floor: str, status: SubscriptionStatus) -> None:
    # Act
    result = plan(context(settings=SizingSettings(equity_floor=D(floor), status=status)))

    # Assert
    assert result.status_change is None
    assert result.status_reason is None


def test_an_equity_floor_fails_closed_without_a_fresh_follower_equity() -> None:
    # Arrange: fixed sizing, so only the floor reads the follower's equity
    settings = SizingSettings(
        mode=SizingMode.FIXED_MULTIPLIER, equity_floor=D(1), max_equity_age_s=60
    )
    stale = equity("10000", 2, AT - timedelta(minutes=5))

    # Act
    result = plan(context(settings=settings, follower_equity=stale))

    # Assert
    assert result.skip_reason is SkipReason.STALE_EQUITY
    assert result.status_change is None


# --- symbols ---


def test_symbol_map_names_the_follower_symbol() -> None:
    # Arrange
    settings = SizingSettings(
        symbol_map={SYMBOL: "BTC-USDT-SWAP"}, allow=frozenset({"BTC-USDT-SWAP"})
    )

    # Act
    result = plan(context(settings=settings, inst=rules(symbol="BTC-USDT-SWAP")))

    # Assert
    assert result.symbol == "BTC-USDT-SWAP"
    assert describe(result) == ["buy 0.2"]


@pytest.mark.parametrize(
    ("allow", "deny", "reason"),
    [
        pytest.param({SYMBOL}, set(), None, id="allow-by-leader-name"),
        pytest.param({"BTC-USDT-SWAP"}, set(), None, id="allow-by-follower-name"),
        pytest.param({"ETHUSDT"}, set(), SkipReason.SYMBOL_NOT_ALLOWED, id="not-allowed"),
        pytest.param(None, {"BTC-USDT-SWAP"}, SkipReason.SYMBOL_DENIED, id="deny-follower-name"),
        pytest.param(None, {SYMBOL}, SkipReason.SYMBOL_DENIED, id="deny-leader-name"),
    ],
)
def test_symbol_lists_match_either_name(
    allow: set[str] | None, deny: set[str], reason: SkipReason | None
) -> None:
    # Arrange
    settings = SizingSettings(
        symbol_map={SYMBOL: "BTC-USDT-SWAP"},
        allow=None if allow is None else frozenset(allow),
        deny=frozenset(deny),
    )

    # Act
    result = plan(context(settings=settings, inst=rules(symbol="BTC-USDT-SWAP")))

    # Assert
    assert result.skip_reason is reason


def test_symbol_map_is_frozen_at_construction() -> None:
    # Arrange
    source = {SYMBOL: "BTC-USDT-SWAP"}
    settings = SizingSettings(symbol_map=source)

    # Act
    source[SYMBOL] = "OTHER"

    # Assert
    assert settings.symbol_map[SYMBOL] == "BTC-USDT-SWAP"
    assert hash(settings) == hash(SizingSettings(symbol_map={SYMBOL: "X"}))
    with pytest.raises(TypeError):
        settings.symbol_map[SYMBOL] = "X"  # type: ignore[index]


# --- invalid inputs raise, naming the field ---


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        pytest.param({"multiplier": D(0)}, "multiplier", id="zero-multiplier"),
        pytest.param({"multiplier": D("NaN")}, "multiplier", id="nan-multiplier"),
        pytest.param({"mode": SizingMode.FIXED_NOTIONAL}, "notional", id="notional-missing"),
        pytest.param({"notional": D(-1)}, "notional", id="negative-notional"),
        pytest.param({"max_order_notional": D(0)}, "max_order_notional", id="zero-order-cap"),
        pytest.param({"max_position_notional": D(-1)}, "max_position_notional", id="neg-cap"),
        pytest.param({"max_leverage": D(0)}, "max_leverage", id="zero-leverage"),
        pytest.param({"max_slippage": D(1)}, "max_slippage", id="slippage-100pct"),
        pytest.param({"max_slippage": D("-0.1")}, "max_slippage", id="negative-slippage"),
        pytest.param({"max_equity_age_s": -1.0}, "max_equity_age_s", id="negative-age"),
        pytest.param({"max_equity_age_s": float("nan")}, "max_equity_age_s", id="nan-age"),
        pytest.param({"equity_floor": D("Infinity")}, "equity_floor", id="infinite-floor"),
    ],
)
def test_settings_are_validated(kwargs: dict[str, object], field: str) -> None:
    # Act / Assert
    with pytest.raises(ValueError, match=field):
        SizingSettings(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        pytest.param({"qty_step": D(0)}, "qty_step", id="zero-step"),
        pytest.param({"min_qty": D(-1)}, "min_qty", id="negative-min-qty"),
        pytest.param({"min_notional": D("NaN")}, "min_notional", id="nan-min-notional"),
        pytest.param({"price_step": D(0)}, "price_step", id="zero-price-step"),
    ],
)
def test_instrument_rules_are_validated(kwargs: dict[str, Decimal], field: str) -> None:
    # Arrange
    values = {"qty_step": D("0.001"), **kwargs}

    # Act / Assert
    with pytest.raises(ValueError, match=field):
        InstrumentRules(SYMBOL, **values)


def test_rules_of_another_symbol_are_refused() -> None:
    # Act / Assert
    with pytest.raises(ValueError, match="instrument"):
        plan(context(inst=rules(symbol="ETHUSDT")))


@pytest.mark.parametrize(("qty", "price"), [("0", "50000"), ("1", "0"), ("-1", "50000")])
def test_a_fill_that_cannot_be_true_is_refused(qty: str, price: str) -> None:
    # Act / Assert
    with pytest.raises(ValueError, match=r"qty|price"):
        plan(context(qty=qty, price=price))
