"""The leader feed is untrusted: fills too absurd to size are quarantined, with a reason."""

from __future__ import annotations

import enum
from decimal import Decimal

# A fill worth more than this many times the leader's equity is a unit error (cents for units,
# a misplaced decimal point) or a hostile feed, never a trade to copy.
MAX_NOTIONAL_TO_EQUITY = Decimal(1000)


class QuarantineReason(enum.StrEnum):
    """Stable codes: the metric's label, the push error and the stored row use them."""

    NOTIONAL_OVER_EQUITY = "notional_over_equity"
    # Well-formed frames whose values cannot be true (found while parsing).
    NON_POSITIVE_VALUE = "non_positive_value"
    OUT_OF_BOUNDS = "out_of_bounds"
    TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"
    FUTURE_TIMESTAMP = "future_timestamp"
    # A venue row that cannot be read (a field missing or of the wrong type).
    MALFORMED_ROW = "malformed_row"


def quarantine_reason(
    qty: Decimal, price: Decimal, leader_equity: Decimal | None
) -> QuarantineReason | None:
    """Why this fill must not be sized, or None when it may be.

    Without a positive leader equity there is nothing to compare with: sizing then skips the
    fill as ``no_equity`` anyway, so it is not quarantined here.
    """
    if leader_equity is None or leader_equity <= 0:
        return None
    if qty * price > leader_equity * MAX_NOTIONAL_TO_EQUITY:
        return QuarantineReason.NOTIONAL_OVER_EQUITY
    return None
