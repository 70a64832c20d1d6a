"""The report an executor sends back (JSON in the ``report`` field of an entry of the
follower's report stream, ``copytrade:reports:{<follower_id>}``), and its parsing."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

import msgspec

from app.domain.decimals import MAX_DIGITS, is_bounded
from app.domain.lifecycle import Report, ReportError, ReportStatus

# Printable text only: control characters (NUL above all) have no business in a reason.
# (Written for pydantic's Rust engine; msgspec uses Python's re, where only \Z is a hard end.)
REASON_PATTERN = r"^[^\x00-\x1f\x7f]*$"


class ReportFrame(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The report an executor sends (JSON in the ``report`` field of a stream entry)."""

    order_id: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    status: Literal["accepted", "partially_filled", "filled", "rejected", "expired"]
    filled_qty: Decimal = Decimal(0)
    avg_price: Decimal | None = None
    reason: (
        Annotated[str, msgspec.Meta(max_length=200, pattern=REASON_PATTERN[:-1] + r"\Z")] | None
    ) = None


_decoder = msgspec.json.Decoder(ReportFrame)


def parse_report(raw: str | bytes) -> tuple[str, Report]:
    """Decode one stream report. Raises ReportError naming the field."""
    try:
        frame = _decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ReportError(str(exc)) from exc
    for name, value in (("filled_qty", frame.filled_qty), ("avg_price", frame.avg_price)):
        if value is not None and not is_bounded(value):
            raise ReportError(f"{name}: must be a finite decimal of at most {MAX_DIGITS} digits")
    return frame.order_id, Report(
        ReportStatus(frame.status), frame.filled_qty, frame.avg_price, frame.reason
    )
