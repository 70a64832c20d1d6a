"""The order message: the JSON an executor reads from the stream (schema version 1)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from app.domain.decimals import fmt
from app.domain.model import EquityReading, Fill
from app.domain.plan_model import OrderType, Plan, PlannedLeg, SizingSettings

SCHEMA_VERSION = 1
_encoder = msgspec.json.Encoder()


def _d(value: Decimal | None) -> str | None:
    return None if value is None else fmt(value)


class FillMessages:
    """Encodes the orders of one leader fill.

    A fill fans out to thousands of orders that share most of their text: what they share
    (the fill, the leader's side of the explanation, timestamps) is formatted once here.
    """

    def __init__(
        self,
        fill: Fill,
        created_at: datetime,
        valid_until: datetime,
        leader_equity: EquityReading | None,
    ) -> None:
        self._fill = fill
        self._leader_id = str(fill.leader_id)
        self._created_at = created_at.isoformat()
        self._valid_until = valid_until.isoformat()
        self._leader = {
            "leader_price": fmt(fill.price),
            "leader_equity": _d(leader_equity.equity) if leader_equity else None,
            "leader_equity_snapshot_id": leader_equity.snapshot_id if leader_equity else None,
        }
        self._texts: dict[Decimal, str] = {}  # multipliers and lot steps repeat across orders

    def _text(self, value: Decimal) -> str:
        text = self._texts.get(value)
        if text is None:
            text = self._texts[value] = fmt(value)
        return text

    # Enum members are encoded as they are (msgspec writes a StrEnum as its value): .value is
    # a Python-level property, and there are several per order.
    def explanation(
        self,
        plan: Plan,
        settings: SizingSettings,
        follower_equity: EquityReading | None,
        qty_step: Decimal,
    ) -> dict[str, Any]:
        """Every input that produced the order, amounts as decimal strings."""
        return {
            "mode": settings.mode,
            **self._leader,
            "follower_equity": _d(follower_equity.equity) if follower_equity else None,
            "follower_equity_snapshot_id": (
                follower_equity.snapshot_id if follower_equity else None
            ),
            "ratio": _d(plan.ratio),
            "multiplier": self._text(settings.multiplier),
            "effect": plan.effect,
            "leader_position_before": self._text(plan.leader_position_before),
            "leader_position_after": self._text(plan.leader_position_after),
            "follower_position_before": fmt(plan.follower_position_before),
            "follower_position_after": fmt(plan.follower_position_after),
            "target": _d(plan.target),
            "raw_qty": _d(plan.raw_qty),
            "residue": fmt(plan.residue),
            "clamps": list(plan.clamps),
            "qty_step": self._text(qty_step),
            "skip_reason": plan.skip_reason,
        }

    def encode(
        self,
        *,
        order_id: str,
        follower_id: str,
        subscription_id: str,
        symbol: str,
        leg: PlannedLeg | None,
        sizing: dict[str, Any],
    ) -> str:
        """Encode once; the same text is stored in the outbox and sent to the stream.

        ``leg`` None is a skipped order: quantity 0, the leader's side, the reason in ``sizing``.
        """
        document = {
            "v": SCHEMA_VERSION,
            "order_id": order_id,
            "follower_id": follower_id,
            "leader_id": self._leader_id,
            "subscription_id": subscription_id,
            "leader_fill_id": self._fill.fill_id,
            "symbol": symbol,
            "side": leg.side if leg else self._fill.side,
            "qty": fmt(leg.qty) if leg else "0",
            "type": leg.order_type if leg else OrderType.MARKET,
            "reduce_only": leg.reduce_only if leg else False,
            "limit_price": _d(leg.limit_price) if leg else None,
            "time_in_force": leg.time_in_force if leg else None,
            "created_at": self._created_at,
            "valid_until": self._valid_until,
            "sizing": sizing,
        }
        return _encoder.encode(document).decode()


class _Ids(msgspec.Struct):
    leader_id: str
    leader_fill_id: str


_ids_decoder = msgspec.json.Decoder(_Ids)


def fill_ids(payload: str | bytes) -> dict[str, str]:
    """The leader and fill an order payload came from, for log lines off the hot path."""
    try:
        ids = _ids_decoder.decode(payload)
    except msgspec.DecodeError:  # also ValidationError: a payload is ours, but never crash a log
        return {}
    return {"leader_id": ids.leader_id, "fill_id": ids.leader_fill_id}


def feed_message(payload: str, status: str, skip_reason: str | None) -> str:
    """Wrap an order payload for the feed without decoding and re-encoding it."""
    reason = "null" if skip_reason is None else f'"{skip_reason}"'
    return f'{{"type":"order","status":"{status}","skip_reason":{reason},"order":{payload}}}'
