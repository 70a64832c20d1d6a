"""The order message: the JSON an executor reads from the stream (schema version 1)."""

from __future__ import annotations

from typing import Any

import msgspec

from app.domain.decimals import fmt
from app.domain.model import MirrorOrder, Sizing

SCHEMA_VERSION = 1
_encoder = msgspec.json.Encoder()


def sizing_json(sizing: Sizing, leader_price: Any) -> dict[str, Any]:
    """The sizing inputs, every amount as a decimal string."""
    le, fe = sizing.leader_equity, sizing.follower_equity
    return {
        "leader_equity": fmt(le.equity) if le else None,
        "leader_equity_snapshot_id": le.snapshot_id if le else None,
        "follower_equity": fmt(fe.equity) if fe else None,
        "follower_equity_snapshot_id": fe.snapshot_id if fe else None,
        "ratio": fmt(sizing.ratio) if sizing.ratio is not None else None,
        "multiplier": fmt(sizing.multiplier),
        "raw_qty": fmt(sizing.raw_qty) if sizing.raw_qty is not None else None,
        "qty_step": fmt(sizing.qty_step),
        "qty": fmt(sizing.qty),
        "leader_price": fmt(leader_price),
        "skip_reason": sizing.skip_reason.value if sizing.skip_reason else None,
    }


def order_document(order: MirrorOrder) -> dict[str, Any]:
    fill = order.fill
    return {
        "v": SCHEMA_VERSION,
        "order_id": order.order_id,
        "follower_id": str(order.follower_id),
        "leader_id": str(order.leader_id),
        "subscription_id": str(order.subscription_id),
        "leader_fill_id": fill.fill_id,
        "symbol": order.symbol,
        "side": order.side.value,
        "qty": fmt(order.qty),
        "type": order.type,
        "reduce_only": order.reduce_only,
        "created_at": order.created_at.isoformat(),
        "valid_until": order.valid_until.isoformat(),
        "sizing": sizing_json(order.sizing, fill.price),
    }


def encode_order(order: MirrorOrder) -> str:
    """Encode once; the same text is stored in the outbox and sent to the stream."""
    return _encoder.encode(order_document(order)).decode()


def feed_message(payload: str, status: str, skip_reason: str | None) -> str:
    """Wrap an order payload for the feed without decoding and re-encoding it."""
    reason = "null" if skip_reason is None else f'"{skip_reason}"'
    return f'{{"type":"order","status":"{status}","skip_reason":{reason},"order":{payload}}}'


def order_row(order: MirrorOrder, fill_pk: int, payload: str) -> dict[str, Any]:
    """The follower_order row for ``order``."""
    sizing = order.sizing
    return {
        "id": order.order_id,
        "fill_pk": fill_pk,
        "leg": 0,
        "follower_id": order.follower_id,
        "leader_id": order.leader_id,
        "subscription_id": order.subscription_id,
        "leader_equity_snapshot_id": (
            sizing.leader_equity.snapshot_id if sizing.leader_equity else None
        ),
        "follower_equity_snapshot_id": (
            sizing.follower_equity.snapshot_id if sizing.follower_equity else None
        ),
        "symbol": order.symbol,
        "side": order.side.value,
        "qty": order.qty,
        "type": order.type,
        "reduce_only": order.reduce_only,
        "status": order.status.value,
        "skip_reason": sizing.skip_reason.value if sizing.skip_reason else None,
        "sizing": sizing_json(sizing, order.fill.price),
        "payload": payload,
        "created_at": order.created_at,
        "dispatched_at": None,
        "valid_until": order.valid_until,
    }
