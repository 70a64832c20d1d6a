"""The order message (versions 1 and 2): its keys, in order, and its values as decimal text."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID

from app.domain.decimals import fmt
from app.domain.model import EquityReading, Fill, Side, SkipReason
from app.domain.plan_model import OrderType, Plan, PlannedLeg, SizingMode, SizingSettings
from app.domain.positions import FillEffect
from app.executors.protocol.messages import FillMessages, lean_order, reference_price, wire_time

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
LEADER = UUID("00000000-0000-4000-8000-000000000001")
FILL = Fill(LEADER, "f-1", "BTCUSDT", Side.BUY, Decimal("1.50"), Decimal("50000.0"), NOW, NOW)
DOCUMENT_KEYS = [
    "v", "order_id", "follower_id", "leader_id", "subscription_id", "leader_fill_id", "symbol",
    "side", "qty", "type", "reduce_only", "limit_price", "time_in_force", "created_at",
    "valid_until", "sizing", "leader_fill",
]  # fmt: skip
SIZING_KEYS = [
    "mode", "leader_price", "leader_equity", "leader_equity_snapshot_id", "follower_equity",
    "follower_equity_snapshot_id", "ratio", "multiplier", "effect", "leader_position_before",
    "leader_position_after", "follower_position_before", "follower_position_after", "target",
    "raw_qty", "residue", "clamps", "qty_step", "skip_reason",
]  # fmt: skip


def messages(leader_equity: EquityReading | None) -> FillMessages:
    return FillMessages(FILL, NOW, NOW + timedelta(seconds=30), leader_equity)


def test_a_sent_order_carries_every_field_in_schema_order() -> None:
    # Arrange
    fill_messages = messages(EquityReading(7, Decimal("100000.00"), NOW))
    plan = Plan(
        symbol="BTCUSDT",
        legs=(
            PlannedLeg(
                Side.BUY, Decimal("0.0150"), False, OrderType.LIMIT, Decimal("50050.5"), "IOC"
            ),
        ),
        skip_reason=None,
        effect=FillEffect.OPEN,
        leader_position_before=Decimal(0),
        leader_position_after=Decimal("1.5"),
        follower_position_before=Decimal(0),
        follower_position_after=Decimal("0.015"),
        ratio=Decimal("0.01"),
        target=Decimal("0.01500"),
        raw_qty=Decimal("0.0153"),
        residue=Decimal("0.0003"),
        clamps=("max_order_notional",),
    )
    sizing = fill_messages.explanation(
        plan, SizingSettings(multiplier=Decimal("1.0")), EquityReading(9, Decimal("1000"), NOW),
        Decimal("0.001"),
    )  # fmt: skip

    # Act
    payload = fill_messages.encode(
        order_id="ct-1", follower_id="F", subscription_id="S", symbol="BTCUSDT",
        leg=plan.legs[0], sizing=sizing,
    )  # fmt: skip

    # Assert
    document = json.loads(payload)
    assert list(document) == DOCUMENT_KEYS
    assert list(document["sizing"]) == SIZING_KEYS
    # What the venue said of the leader's fill (none of it given here).
    assert document["leader_fill"] == {
        "liquidation": False, "reduce_only": None, "fee": None, "fee_asset": None
    }  # fmt: skip
    assert {k: document[k] for k in DOCUMENT_KEYS[:-2]} == {
        "v": 1, "order_id": "ct-1", "follower_id": "F", "leader_id": str(LEADER),
        "subscription_id": "S", "leader_fill_id": "f-1", "symbol": "BTCUSDT", "side": "buy",
        "qty": "0.015", "type": "limit", "reduce_only": False, "limit_price": "50050.5",
        "time_in_force": "IOC", "created_at": "2026-12-05T10:00:00+00:00",
        "valid_until": "2026-12-05T10:00:30+00:00",
    }  # fmt: skip
    assert document["sizing"] == {
        "mode": SizingMode.TARGET.value, "leader_price": "50000", "leader_equity": "100000",
        "leader_equity_snapshot_id": 7, "follower_equity": "1000",
        "follower_equity_snapshot_id": 9, "ratio": "0.01", "multiplier": "1",
        "effect": "open", "leader_position_before": "0", "leader_position_after": "1.5",
        "follower_position_before": "0", "follower_position_after": "0.015",
        "target": "0.015", "raw_qty": "0.0153", "residue": "0.0003",
        "clamps": ["max_order_notional"], "qty_step": "0.001", "skip_reason": None,
    }  # fmt: skip


def test_a_skipped_order_is_quantity_zero_on_the_leaders_side_with_its_reason() -> None:
    # Arrange: no equity on either side.
    fill_messages = messages(None)
    plan = Plan(
        symbol="BTCUSDT",
        legs=(),
        skip_reason=SkipReason.NO_EQUITY,
        effect=FillEffect.OPEN,
        leader_position_before=Decimal(0),
        leader_position_after=Decimal("1.5"),
        follower_position_before=Decimal(0),
        follower_position_after=Decimal(0),
    )
    sizing = fill_messages.explanation(plan, SizingSettings(), None, Decimal("0.001"))

    # Act
    payload = fill_messages.encode(
        order_id="ct-2", follower_id="F", subscription_id="S", symbol="BTCUSDT", leg=None,
        sizing=sizing,
    )  # fmt: skip

    # Assert
    document = json.loads(payload)
    assert (document["side"], document["qty"], document["type"]) == ("buy", "0", "market")
    assert (document["reduce_only"], document["limit_price"]) == (False, None)
    assert {k: document["sizing"][k] for k in ("leader_equity", "follower_equity", "ratio")} == {
        "leader_equity": None, "follower_equity": None, "ratio": None,
    }  # fmt: skip
    assert document["sizing"]["skip_reason"] == "no_equity"
    assert document["sizing"]["clamps"] == []


LEAN_KEYS = [
    "v", "order_id", "follower_id", "leader_id", "subscription_id", "leader_fill_id", "symbol",
    "side", "qty", "type", "reduce_only", "limit_price", "time_in_force", "valid_until",
    "leader_price", "explanation",
]  # fmt: skip


def test_version_2_carries_the_order_the_leaders_price_and_a_link_to_its_explanation() -> None:
    # Arrange
    fill_messages = messages(None)
    leg = PlannedLeg(Side.BUY, Decimal("0.0150"), True, OrderType.LIMIT, Decimal("50050.50"), "IOC")

    # Act
    sent = fill_messages.lean("ct-1", "F", "S", "BTC-USDT", leg)
    skipped = fill_messages.lean("ct-2", "F", "S", "BTC-USDT", None)

    # Assert
    document = json.loads(sent)
    assert list(document) == LEAN_KEYS
    assert document == {
        "v": 2, "order_id": "ct-1", "follower_id": "F", "leader_id": str(LEADER),
        "subscription_id": "S", "leader_fill_id": "f-1", "symbol": "BTC-USDT", "side": "buy",
        "qty": "0.015", "type": "limit", "reduce_only": True, "limit_price": "50050.5",
        "time_in_force": "IOC", "valid_until": "2026-12-05T10:00:30+00:00",
        "leader_price": "50000", "explanation": "/v1/followers/F/orders/ct-1",
    }  # fmt: skip
    assert reference_price(document) == Decimal("50000")
    lean_skip = json.loads(skipped)
    assert (lean_skip["side"], lean_skip["qty"], lean_skip["type"]) == ("buy", "0", "market")


def test_the_relays_encoder_writes_the_same_bytes_from_the_rows_values() -> None:
    # Arrange: what the sizing engine sent, and the same order as its row reads back (amounts
    # as NUMERIC gives them, the time in another zone).
    leg = PlannedLeg(Side.SELL, Decimal("0.0150"), False, OrderType.MARKET, None, None)
    sent = messages(None).lean("ct-1", "F", "S", "BTCUSDT", leg)

    # Act
    rebuilt = lean_order(
        order_id="ct-1", follower_id="F", leader_id=str(LEADER), subscription_id="S",
        leader_fill_id="f-1", symbol="BTCUSDT", side="sell", qty=fmt(Decimal("0.01500000")),
        order_type="market", reduce_only=False, limit_price=None, time_in_force=None,
        valid_until=wire_time(
            (NOW + timedelta(seconds=30)).astimezone(timezone(timedelta(hours=2)))
        ),
        leader_price=fmt(Decimal("50000.000")),
    )  # fmt: skip

    # Assert
    assert rebuilt == sent


def test_readers_take_the_reference_price_from_either_version() -> None:
    assert reference_price({"v": 1, "sizing": {"leader_price": "61000.5"}}) == Decimal("61000.5")
    assert reference_price({"v": 2, "leader_price": "61000.5"}) == Decimal("61000.5")
