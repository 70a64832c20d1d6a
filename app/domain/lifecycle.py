"""Order lifecycle: how an executor report moves an order, and what it does to the position.

Reports carry the cumulative filled quantity, so applying the same report twice, or an older
one after a newer one, changes nothing: executors may resend freely.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal

from app.domain.model import Side


class ReportStatus(enum.StrEnum):
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    REJECTED = "rejected"
    EXPIRED = "expired"


TERMINAL = frozenset({"filled", "rejected", "expired", "skipped"})
# How far along each status is; a report never moves an order backwards.
_RANK = {
    "pending": 0,
    "dispatched": 1,
    "accepted": 2,
    "partially_filled": 3,
    "filled": 4,
    "rejected": 4,
    "expired": 4,
}


def shown_status(stored: str, fill_dispatched: bool) -> str:
    """The status to show for an order row.

    A row stays ``pending`` until its executor reports: that it reached its stream is
    recorded once for all the orders of its fill, not by rewriting each row.
    """
    return "dispatched" if stored == "pending" and fill_dispatched else stored


@dataclass(frozen=True, slots=True)
class OrderState:
    status: str
    side: Side
    qty: Decimal
    filled_qty: Decimal
    avg_price: Decimal | None


@dataclass(frozen=True, slots=True)
class Report:
    status: ReportStatus
    filled_qty: Decimal  # cumulative
    avg_price: Decimal | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    status: str
    filled_qty: Decimal
    avg_price: Decimal | None
    reason: str | None
    position_delta: Decimal  # signed: + for buys, - for sells


class ReportError(ValueError):
    """A report that contradicts the order (names the field)."""


def apply_report(state: OrderState, report: Report) -> Transition | None:
    """Return the order's next state, or None when the report brings nothing new.

    Raises ReportError for a report that cannot be true: more filled than ordered, a fill
    without a price, an unfilled "filled", a report on an order that was never sent.
    """
    if state.status == "skipped":
        raise ReportError("order_id: a skipped order was never sent to an executor")
    if report.filled_qty < 0 or report.filled_qty > state.qty:
        raise ReportError(f"filled_qty: must be between 0 and the order qty {state.qty}")
    if report.filled_qty > 0 and (report.avg_price is None or report.avg_price <= 0):
        raise ReportError("avg_price: required and positive when filled_qty > 0")
    if report.status is ReportStatus.FILLED and report.filled_qty != state.qty:
        raise ReportError("filled_qty: a filled order is filled in full; use partially_filled")

    # Fill quantity only grows; a stale or repeated report cannot shrink it.
    new_filled = max(state.filled_qty, report.filled_qty)
    if new_filled == state.qty and state.qty > 0:
        status = ReportStatus.FILLED.value
    elif _RANK[report.status.value] > _RANK[state.status] and state.status not in TERMINAL:
        status = report.status.value
    else:
        status = state.status
    if status == state.status and new_filled == state.filled_qty:
        return None
    sign = Decimal(1) if state.side is Side.BUY else Decimal(-1)
    return Transition(
        status=status,
        filled_qty=new_filled,
        avg_price=report.avg_price if new_filled > state.filled_qty else state.avg_price,
        reason=report.reason,
        position_delta=sign * (new_filled - state.filled_qty),
    )


UNFILLED_ENDS = frozenset({"rejected", "expired"})


def tracking_correction(state: OrderState, transition: Transition) -> Decimal:
    """How far the position sizing assumes must move: it counted every sent order as filled,
    so an order that ends short (rejected, expired) gives back what did not fill, and a late
    fill after that end takes it again."""

    def shortfall(status: str, filled: Decimal) -> Decimal:
        return filled - state.qty if status in UNFILLED_ENDS else Decimal(0)

    delta = shortfall(transition.status, transition.filled_qty) - shortfall(
        state.status, state.filled_qty
    )
    return delta if state.side is Side.BUY else -delta
