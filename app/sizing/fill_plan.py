"""One fill's orders for some subscriptions: planned, laid out as the rows that record them.

The engine (app.sizing.engine) plans a fill's fan-out here, in one call or chunk by chunk
(app.sizing.chunks); each subscription is sized by the vector path where it covers it
(app.sizing.vector_books), else by the Decimal planner.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple
from uuid import UUID

from app.db.repositories import fills
from app.domain.ids import FillOrderIds
from app.domain.instruments import not_listed_plan
from app.domain.model import EquityReading, Fill
from app.domain.plan_model import (
    InstrumentRules,
    OrderType,
    Plan,
    PlanContext,
    PlannedLeg,
    SubscriptionStatus,
)
from app.domain.planner import plan_within, planning
from app.domain.positions import signed_qty
from app.executors.protocol.messages import FillMessages, stored_clamps
from app.sizing.books import LeaderBook, SubscriptionBook
from app.sizing.equity_cache import EquityCache
from app.sizing.vector_books import FillVector, vector_plan


class PlannedOrder(NamedTuple):
    """One order row a fill produced: sent (``pending`` until Redis confirms) or skipped.

    A NamedTuple: one per follower per fill, and immutable without a frozen dataclass's cost.
    """

    order_id: str
    follower_id: UUID
    subscription_id: UUID
    status: str
    skip_reason: str | None
    payload: str  # the order message sent (version 2)
    fill_key: str  # the fill it came from, as the enqueue names it (domain.ids.fill_key)

    @property
    def skipped(self) -> bool:
        return self.status == "skipped"


@dataclass(frozen=True, slots=True)
class FillInputs:
    """What every subscription's plan for one fill shares."""

    fill: Fill
    leader_before: Decimal
    leader_equity: EquityReading | None
    now: datetime
    messages: FillMessages
    order_ids: FillOrderIds
    # What plans each subscription: the planner, or a follower resync's (app.domain.drift).
    planner: Callable[[PlanContext], Plan] = plan_within


@dataclass(slots=True)
class Batch:
    """The planned rows of some subscriptions, and the cache moves they make once committed."""

    rows: fills.OrderRows = field(default_factory=fills.OrderRows)
    moves: fills.PositionMoves = field(default_factory=fills.PositionMoves)
    changes: fills.StatusChanges = field(default_factory=fills.StatusChanges)
    produced: list[PlannedOrder] = field(default_factory=list)
    applied: list[tuple[SubscriptionBook, str, Decimal, SubscriptionStatus | None]] = field(
        default_factory=list
    )


_MARKET = OrderType.MARKET
_ZERO = Decimal(0)

# A subscription's symbol and rules for a leader symbol; None where its venue does not list it.
Place = Callable[[LeaderBook, SubscriptionBook, str], tuple[str, InstrumentRules] | None]


def leader_positions(fill: Fill, before: Decimal) -> tuple[Decimal, Decimal]:
    """The leader's position before and after ``fill`` as the fill's row records them for all
    its orders: what the planner sees. An order whose plan saw other values (a follower
    resync's leaves the leader where it was) stores its own."""
    with planning():
        return before, before + signed_qty(fill.side, fill.qty)


def plan_batch(
    book: LeaderBook,
    inputs: FillInputs,
    subscriptions: list[SubscriptionBook],
    place: Place,
    instrument: Callable[[str], InstrumentRules],
    equity: EquityCache,
    vector: FillVector | None = None,
    offset: int = 0,
) -> Batch:
    """Plan ``subscriptions`` for one fill: their order rows, position moves and status
    changes, and what the cache applies once they commit. ``place`` finds a subscription's
    symbol and rules, ``instrument`` a symbol's rules. ``vector``: the fill sized by the
    vector path, where ``subscriptions`` start at the book's ``offset``-th."""
    fill, messages = inputs.fill, inputs.messages
    order_ids = inputs.order_ids
    shared_before, shared_after = leader_positions(fill, inputs.leader_before)
    batch = Batch()
    rows, moves, changes = batch.rows, batch.moves, batch.changes
    produced, applied = batch.produced, batch.applied

    # One decimal context for the whole chunk; inside it the cache's position arithmetic
    # is exact too (80 digits). Enum members go in as they are, never .value (a property
    # lookup in Python, 0.2 us each): a StrEnum member is a str holding its value, and
    # asyncpg, msgspec and the metrics take it as that str.
    with planning():
        for position, sub in enumerate(subscriptions, offset):
            hit = None if vector is None else vector_plan(vector, position, sub)
            if hit is not None:
                result, symbol, rules, follower_equity, follower_before = hit
            else:
                placed = place(book, sub, fill.symbol)
                symbol, rules = placed or (fill.symbol, instrument(fill.symbol))
                follower_equity = equity.follower(sub.follower_id)
                follower_before = sub.positions.get(symbol, Decimal(0))
                result = plan_one(
                    book, inputs, sub, placed is not None, symbol, rules, follower_equity
                )
            sizing = messages.explanation(result, sub.settings, follower_equity, rules.qty_step)
            legs: tuple[PlannedLeg | None, ...] = result.legs
            if not legs:
                legs = (None,)
            elif result.skip_reason is not None:
                legs = (*legs, None)  # the leg held back: a skipped order of its own
            # The explanation's per-order part, the same for each leg of this plan: its texts
            # are stored as they are.
            clamps = stored_clamps(result.clamps)
            equity_id = sizing.follower_equity_snapshot_id
            leader_before = result.leader_position_before
            leader_after = result.leader_position_after
            own_before = None if leader_before == shared_before else leader_before
            own_after = None if leader_after == shared_after else leader_after
            for index, leg in enumerate(legs):
                oid = order_ids(sub.id_text, index)
                # The stream gets version 2; the explanation goes to the row's columns below.
                payload = messages.lean(oid, sub.follower_text, sub.id_text, symbol, leg)
                skip = result.skip_reason if leg is None else None
                status = "skipped" if leg is None else "pending"
                rows.id.append(oid)
                rows.leg.append(index)
                rows.follower_id.append(sub.follower_text)
                rows.subscription_id.append(sub.id_text)
                rows.follower_equity_snapshot_id.append(equity_id)
                rows.symbol.append(symbol)
                rows.side.append(leg.side if leg else fill.side)
                rows.qty.append(leg.qty if leg else _ZERO)
                rows.type.append(leg.order_type if leg else _MARKET)
                rows.reduce_only.append(leg.reduce_only if leg else False)
                rows.limit_price.append(leg.limit_price if leg else None)
                rows.time_in_force.append(leg.time_in_force if leg else None)
                rows.status.append(status)
                rows.skip_reason.append(skip)
                rows.mode.append(sizing.mode)
                rows.follower_equity.append(sizing.follower_equity)
                rows.ratio.append(sizing.ratio)
                rows.multiplier.append(sizing.multiplier)
                rows.effect.append(sizing.effect)
                rows.follower_position_before.append(sizing.follower_position_before)
                rows.follower_position_after.append(sizing.follower_position_after)
                rows.target.append(sizing.target)
                rows.raw_qty.append(sizing.raw_qty)
                rows.residue.append(sizing.residue)
                rows.clamps.append(clamps)
                rows.qty_step.append(sizing.qty_step)
                rows.held_reason.append(result.skip_reason if leg is not None else None)
                rows.leader_position_before.append(own_before)
                rows.leader_position_after.append(own_after)
                produced.append(
                    PlannedOrder(
                        oid, sub.follower_id, sub.id, status, skip, payload, messages.fill_key
                    )
                )
            delta = result.follower_position_after - follower_before if result.legs else Decimal(0)
            if delta:
                moves.subscription_id.append(sub.id_text)
                moves.symbol.append(symbol)
                moves.delta.append(delta)
            if result.status_change is not None:
                changes.subscription_id.append(sub.id_text)
                changes.status.append(result.status_change)
                changes.reason.append(result.status_reason)
            if delta or result.status_change is not None:
                applied.append((sub, symbol, delta, result.status_change))

    return batch


def plan_one(
    book: LeaderBook,
    inputs: FillInputs,
    sub: SubscriptionBook,
    listed: bool,
    symbol: str,
    rules: InstrumentRules,
    follower_equity: EquityReading | None,
) -> Plan:
    """One subscription's plan by the Decimal planner (inside ``planning()``)."""
    follower_before = sub.positions.get(symbol, Decimal(0))
    if not listed:
        return not_listed_plan(inputs.fill, inputs.leader_before, follower_before)
    return inputs.planner(
        PlanContext(
            fill=inputs.fill,
            leader_position_before=inputs.leader_before,
            leader_equity=inputs.leader_equity,
            follower_equity=follower_equity,
            now=inputs.now,
            follower_position_before=follower_before,
            follower_gross_exposure=book.gross_exposure(sub, symbol),
            instrument=rules,
            settings=sub.settings,
        )
    )
