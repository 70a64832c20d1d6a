"""The generic JSON feed format: parse and validate one text frame into a domain value."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from app.domain.decimals import MAX_DIGITS, is_bounded
from app.domain.model import Fill, Side
from app.domain.quarantine import QuarantineReason

SYMBOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,47}$"
# msgspec matches with Python's re, where `$` also matches before a trailing newline; \Z does not.
# (SYMBOL_PATTERN itself stays as is: the API's pydantic validators use the Rust engine.)
Symbol = Annotated[str, msgspec.Meta(pattern=SYMBOL_PATTERN.removesuffix("$") + r"\Z")]
FillId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
# Epoch milliseconds, or an ISO-8601 string.
Timestamp = int | str


class FillFrame(msgspec.Struct, tag_field="type", tag="fill", frozen=True):
    fill_id: FillId
    symbol: Symbol
    side: Literal["buy", "sell"]
    qty: Decimal
    price: Decimal
    ts: Timestamp | None = None


class EquityFrame(msgspec.Struct, tag_field="type", tag="equity", frozen=True):
    equity: Decimal
    ts: Timestamp | None = None


Frame = FillFrame | EquityFrame
_decoder = msgspec.json.Decoder(Frame)

# Epoch milliseconds between these bounds; anything else is a unit mistake (seconds, micros).
_MIN_TS_MS = 946_684_800_000  # 2000-01-01
_MAX_TS_MS = 4_102_444_800_000  # 2100-01-01
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Clocks drift a little; a timestamp further ahead is a unit or clock error upstream.
MAX_CLOCK_SKEW = timedelta(minutes=5)


class FrameError(ValueError):
    """A frame that cannot be used; the message says which field and why.

    ``quarantine`` is set when the frame is well formed but a value is absurd: such frames
    are kept for inspection, not just counted.
    """

    def __init__(self, message: str, quarantine: QuarantineReason | None = None) -> None:
        super().__init__(message)
        self.quarantine = quarantine


@dataclass(frozen=True, slots=True)
class EquityUpdate:
    equity: Decimal
    as_of: datetime


def _positive(value: Decimal, field: str) -> Decimal:
    if not value.is_finite() or value <= 0:
        raise FrameError(
            f"{field}: must be a positive finite decimal", QuarantineReason.NON_POSITIVE_VALUE
        )
    if not is_bounded(value):
        # The same bound as the API's: keeps every sizing product exact.
        raise FrameError(
            f"{field}: at most {MAX_DIGITS} digits, within 1e-30 .. 1e30",
            QuarantineReason.OUT_OF_BOUNDS,
        )
    return value


def parse_ts(value: Timestamp | None, received_at: datetime, field: str = "ts") -> datetime:
    if value is None:
        return received_at
    if isinstance(value, int):
        if not _MIN_TS_MS <= value <= _MAX_TS_MS:
            raise FrameError(
                f"{field}: epoch milliseconds out of range", QuarantineReason.TIMESTAMP_OUT_OF_RANGE
            )
        return _EPOCH + timedelta(milliseconds=value)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise FrameError(f"{field}: not epoch milliseconds or ISO-8601") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def parse_frame(raw: str | bytes, leader_id: UUID, received_at: datetime) -> Fill | EquityUpdate:
    """Decode one frame. Raises FrameError naming the offending field."""
    try:
        frame = _decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise FrameError(str(exc)) from exc
    except msgspec.DecodeError as exc:
        raise FrameError(f"malformed JSON: {exc}") from exc
    # Clocks drift a little; a ts far in the future is a unit or clock error upstream. (An equity
    # reading from the future would also shadow every later one: the newest is picked by as_of.)
    event_at = parse_ts(frame.ts, received_at)
    if event_at > received_at + MAX_CLOCK_SKEW:
        raise FrameError("ts: more than 5 minutes in the future", QuarantineReason.FUTURE_TIMESTAMP)
    if isinstance(frame, EquityFrame):
        return EquityUpdate(_positive(frame.equity, "equity"), event_at)
    return Fill(
        leader_id=leader_id,
        fill_id=frame.fill_id,
        symbol=frame.symbol,
        side=Side(frame.side),
        qty=_positive(frame.qty, "qty"),
        price=_positive(frame.price, "price"),
        event_at=event_at,
        received_at=received_at,
    )
