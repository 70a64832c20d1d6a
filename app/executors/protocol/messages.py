"""The order message: the JSON an executor reads from a follower's order stream.

Version 2 (``LeanOrder``, what is sent): the order itself, the leader's price as a reference,
and a link to the order's explanation in the API. Version 1 (``OrderMessage``, deprecated)
carried the whole explanation; readers still accept it for one release (``reference_price``).

The explanation is stored as columns: an order's own part on its row, what the fill's orders
share on the fill's row; ``sizing_document`` rebuilds it for the API.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

import msgspec

from app.domain.decimals import fmt
from app.domain.ids import fill_key
from app.domain.model import EquityReading, Fill
from app.domain.plan_model import OrderType, Plan, PlannedLeg, SizingSettings

SCHEMA_VERSION = 1
LEAN_VERSION = 2
_encoder = msgspec.json.Encoder()


def _d(value: Decimal | None) -> str | None:
    return None if value is None else fmt(value)


class Explanation(msgspec.Struct, gc=False):
    """Every input that produced an order, amounts as decimal strings (the order's "sizing").

    Structs rather than dicts, fields in the document's order: msgspec writes a struct's keys
    from its definition, faster than a dict's per order (docs/measurements.md), and the
    same JSON. No reference cycles can form through strings and numbers: ``gc=False`` keeps
    them out of the collector.
    """

    mode: str
    leader_price: str
    leader_equity: str | None
    leader_equity_snapshot_id: int | None
    follower_equity: str | None
    follower_equity_snapshot_id: int | None
    ratio: str | None
    multiplier: str
    effect: str
    leader_position_before: str
    leader_position_after: str
    follower_position_before: str
    follower_position_after: str
    target: str | None
    raw_qty: str | None
    residue: str
    clamps: tuple[str, ...]
    qty_step: str
    skip_reason: str | None


class LeaderFillFacts(msgspec.Struct, gc=False):
    """What the venue said about the leader's fill besides the trade (None: not given)."""

    liquidation: bool
    reduce_only: bool | None
    fee: str | None
    fee_asset: str | None


class OrderMessage(msgspec.Struct, gc=False):
    """The order message itself (schema version ``v``)."""

    v: int
    order_id: str
    follower_id: str
    leader_id: str
    subscription_id: str
    leader_fill_id: str
    symbol: str
    side: str
    qty: str
    type: str
    reduce_only: bool
    limit_price: str | None
    time_in_force: str | None
    created_at: str
    valid_until: str
    sizing: Explanation
    leader_fill: LeaderFillFacts


class LeanOrder(msgspec.Struct, gc=False):
    """The order message, version 2: what an executor needs to place the order, and where
    the API explains it. No ``created_at``: executors go by ``valid_until``, and the stream
    entry's id is the time it was sent."""

    v: int
    order_id: str
    follower_id: str
    leader_id: str
    subscription_id: str
    leader_fill_id: str
    symbol: str
    side: str
    qty: str
    type: str
    reduce_only: bool
    limit_price: str | None
    time_in_force: str | None
    valid_until: str
    leader_price: str
    explanation: str


def explanation_path(follower_id: str, order_id: str) -> str:
    """The API path of an order with its explanation (GET, the follower's or an admin's token)."""
    return f"/v1/followers/{follower_id}/orders/{order_id}"


def wire_time(value: datetime) -> str:
    """A timestamp as the order message writes it: ISO 8601 in UTC, to the microsecond."""
    return value.astimezone(UTC).isoformat()


def lean_order(
    *,
    order_id: str,
    follower_id: str,
    leader_id: str,
    subscription_id: str,
    leader_fill_id: str,
    symbol: str,
    side: str,
    qty: str,
    order_type: str,
    reduce_only: bool,
    limit_price: str | None,
    time_in_force: str | None,
    valid_until: str,
    leader_price: str,
) -> str:
    """The one encoder of version 2: the sizing engine's first send and the outbox relay's
    resend (from the order row's columns) both write through here, so a resend is the same
    bytes. Amounts as ``fmt`` writes them, times as ``wire_time`` does."""
    message = LeanOrder(
        LEAN_VERSION, order_id, follower_id, leader_id, subscription_id, leader_fill_id, symbol,
        side, qty, order_type, reduce_only, limit_price, time_in_force, valid_until, leader_price,
        explanation_path(follower_id, order_id),
    )  # fmt: skip
    return _encoder.encode(message).decode()


def reference_price(order: dict[str, Any]) -> Decimal:
    """The leader's fill price an order was sized at: version 2's ``leader_price``, version
    1's ``sizing.leader_price``."""
    price = order.get("leader_price")
    if price is None:
        price = order["sizing"]["leader_price"]
    return Decimal(price)


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
        # Names the fill in Redis (the enqueue's sent markers), as the relay names it too.
        self.fill_key = fill_key(fill.leader_id, fill.fill_id)
        self._valid_until_wire = wire_time(valid_until)
        self._created_at = created_at.isoformat()
        self._valid_until = valid_until.isoformat()
        self._leader_price = fmt(fill.price)
        self._leader_equity = _d(leader_equity.equity) if leader_equity else None
        self._leader_snapshot = leader_equity.snapshot_id if leader_equity else None
        self._texts: dict[Decimal, str] = {}  # multipliers and lot steps repeat across orders
        self._facts = LeaderFillFacts(
            fill.liquidation, fill.reduce_only, _d(fill.fee), fill.fee_asset
        )

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
    ) -> Explanation:
        """Every input that produced the order, amounts as decimal strings."""
        return Explanation(
            settings.mode,
            self._leader_price,
            self._leader_equity,
            self._leader_snapshot,
            _d(follower_equity.equity) if follower_equity else None,
            follower_equity.snapshot_id if follower_equity else None,
            _d(plan.ratio),
            self._text(settings.multiplier),
            plan.effect,
            self._text(plan.leader_position_before),
            self._text(plan.leader_position_after),
            fmt(plan.follower_position_before),
            fmt(plan.follower_position_after),
            _d(plan.target),
            _d(plan.raw_qty),
            fmt(plan.residue),
            plan.clamps,
            self._text(qty_step),
            plan.skip_reason,
        )

    def encode(
        self,
        *,
        order_id: str,
        follower_id: str,
        subscription_id: str,
        symbol: str,
        leg: PlannedLeg | None,
        sizing: Explanation,
    ) -> str:
        """Encode once; the same text is stored in the outbox and sent to the stream.

        ``leg`` None is a skipped order: quantity 0, the leader's side, the reason in ``sizing``.
        """
        message = OrderMessage(
            SCHEMA_VERSION,
            order_id,
            follower_id,
            self._leader_id,
            subscription_id,
            self._fill.fill_id,
            symbol,
            leg.side if leg else self._fill.side,
            fmt(leg.qty) if leg else "0",
            leg.order_type if leg else OrderType.MARKET,
            leg.reduce_only if leg else False,
            _d(leg.limit_price) if leg else None,
            leg.time_in_force if leg else None,
            self._created_at,
            self._valid_until,
            sizing,
            self._facts,
        )
        return _encoder.encode(message).decode()

    def lean(
        self,
        order_id: str,
        follower_id: str,
        subscription_id: str,
        symbol: str,
        leg: PlannedLeg | None,
    ) -> str:
        """The version 2 message of an order (``leg`` None: a skipped order, as ``encode``):
        the struct ``lean_order`` encodes, built here without its keyword call, from the
        fill's text formatted once (one per order of thousands)."""
        fill = self._fill
        message = LeanOrder(
            LEAN_VERSION, order_id, follower_id, self._leader_id, subscription_id, fill.fill_id,
            symbol,
            leg.side if leg else fill.side,
            fmt(leg.qty) if leg else "0",
            leg.order_type if leg else OrderType.MARKET,
            leg.reduce_only if leg else False,
            None if leg is None or leg.limit_price is None else fmt(leg.limit_price),
            leg.time_in_force if leg else None,
            self._valid_until_wire, self._leader_price,
            f"/v1/followers/{follower_id}/orders/{order_id}",
        )  # fmt: skip
        return _encoder.encode(message).decode()


class StoredOrder(Protocol):
    """An order row as stored (app.db.tables.FollowerOrder): its part of the explanation."""

    @property
    def skip_reason(self) -> str | None: ...
    @property
    def mode(self) -> str: ...
    @property
    def follower_equity(self) -> Decimal | None: ...
    @property
    def follower_equity_snapshot_id(self) -> int | None: ...
    @property
    def ratio(self) -> Decimal | None: ...
    @property
    def multiplier(self) -> Decimal: ...
    @property
    def effect(self) -> str: ...
    @property
    def follower_position_before(self) -> Decimal: ...
    @property
    def follower_position_after(self) -> Decimal: ...
    @property
    def target(self) -> Decimal | None: ...
    @property
    def raw_qty(self) -> Decimal | None: ...
    @property
    def residue(self) -> Decimal: ...
    @property
    def clamps(self) -> str | None: ...
    @property
    def qty_step(self) -> Decimal: ...
    @property
    def held_reason(self) -> str | None: ...
    @property
    def leader_position_before(self) -> Decimal | None: ...
    @property
    def leader_position_after(self) -> Decimal | None: ...


class StoredFill(Protocol):
    """The fill row an order came from (app.db.tables.LeaderFill): the explanation's part its
    orders share."""

    @property
    def price(self) -> Decimal: ...
    @property
    def leader_equity(self) -> Decimal | None: ...
    @property
    def leader_equity_snapshot_id(self) -> int | None: ...
    @property
    def leader_position_before(self) -> Decimal | None: ...
    @property
    def leader_position_after(self) -> Decimal | None: ...


CLAMP_SEPARATOR = ","


def stored_clamps(clamps: tuple[str, ...]) -> str | None:
    """``Plan.clamps`` as the order row stores them (None: none)."""
    return CLAMP_SEPARATOR.join(clamps) if clamps else None


def _n(value: Decimal | None) -> Decimal:
    # Columns that are NULL only on rows a fill recorded before they existed, never sized.
    return Decimal(0) if value is None else value


def stored_explanation(order: StoredOrder, fill: StoredFill) -> Explanation:
    """An order's explanation, rebuilt from its row and its fill's: the same one
    ``FillMessages.explanation`` built when the order was planned."""
    leader_before = order.leader_position_before
    leader_after = order.leader_position_after
    return Explanation(
        order.mode,
        fmt(fill.price),
        _d(fill.leader_equity),
        fill.leader_equity_snapshot_id,
        _d(order.follower_equity),
        order.follower_equity_snapshot_id,
        _d(order.ratio),
        fmt(order.multiplier),
        order.effect,
        fmt(_n(fill.leader_position_before if leader_before is None else leader_before)),
        fmt(_n(fill.leader_position_after if leader_after is None else leader_after)),
        fmt(order.follower_position_before),
        fmt(order.follower_position_after),
        _d(order.target),
        _d(order.raw_qty),
        fmt(order.residue),
        tuple(order.clamps.split(CLAMP_SEPARATOR)) if order.clamps else (),
        fmt(order.qty_step),
        order.skip_reason if order.skip_reason is not None else order.held_reason,
    )


def sizing_document(order: StoredOrder, fill: StoredFill) -> dict[str, Any]:
    """``stored_explanation`` as the message's JSON decodes: a dict, clamps a list."""
    document: dict[str, Any] = msgspec.to_builtins(stored_explanation(order, fill))
    document["clamps"] = list(document["clamps"])
    return document


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
