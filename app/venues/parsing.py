"""Reading venue messages: every adapter decodes amounts and times the same strict way."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from app.domain.quarantine import QuarantineReason
from app.ingest.frames import MAX_CLOCK_SKEW, SYMBOL_PATTERN, FrameError, parse_ts, positive

# Venues send amounts as strings; a bare JSON number is decoded as Decimal, never float.
_json = msgspec.json.Decoder(float_hook=Decimal)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SYMBOL = re.compile(SYMBOL_PATTERN.removesuffix("$") + r"\Z")


def load_json(raw: str | bytes) -> Any:
    """Decode a message; FrameError if it is not JSON. Numbers stay exact (no float)."""
    try:
        return _json.decode(raw)
    except msgspec.DecodeError as exc:
        raise FrameError(f"malformed JSON: {exc}") from exc


def load_object(raw: str | bytes) -> dict[str, Any]:
    """Decode a message that must be a JSON object (every venue's stream messages are)."""
    message = load_json(raw)
    if not isinstance(message, dict):
        raise FrameError("expected a JSON object")
    return message


def decimal(value: object, field: str) -> Decimal:
    """A decimal from a venue string (or an exact JSON number); FrameError names the field."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise FrameError(f"{field}: expected a decimal string")
    try:
        result = Decimal(value)
    except InvalidOperation as exc:
        raise FrameError(f"{field}: not a decimal") from exc
    if not result.is_finite():
        raise FrameError(f"{field}: not a finite decimal")
    return result


def positive_decimal(value: object, field: str) -> Decimal:
    """A positive, bounded decimal (quantities, prices); absurd values are quarantined."""
    return positive(decimal(value, field), field)


def epoch_ms(value: object, field: str, received_at: datetime) -> datetime:
    """An event time from epoch milliseconds (int or digit string), at most a little ahead."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise FrameError(f"{field}: expected epoch milliseconds")
    at = parse_ts(value, received_at, field)
    if at > received_at + MAX_CLOCK_SKEW:
        raise FrameError(
            f"{field}: more than 5 minutes in the future", QuarantineReason.FUTURE_TIMESTAMP
        )
    return at


def text(value: object, field: str, max_length: int = 128) -> str:
    """A non-empty bounded string field."""
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise FrameError(f"{field}: expected a non-empty string of at most {max_length} chars")
    return value


def to_epoch_ms(at: datetime) -> int:
    """``at`` in epoch milliseconds, exactly (no float: a time window must not slip a ms)."""
    return (at - _EPOCH) // timedelta(milliseconds=1)


def symbol(value: object, field: str = "symbol") -> str:
    """A venue symbol, held to the same pattern as the API's (letters, digits, ._:-)."""
    if not isinstance(value, str) or not _SYMBOL.match(value):
        raise FrameError(f"{field}: not a valid symbol")
    return value
