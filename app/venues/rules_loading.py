"""What the four venues' instrument loaders share: one row parsed at a time, a bad row
logged, counted and skipped while its neighbours are kept."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TypeVar

import msgspec
import structlog

from app.domain.instruments import Listing
from app.metrics import INSTRUMENT_ROWS_SKIPPED

log = structlog.get_logger(__name__)
Row = TypeVar("Row")
_MAX_LOGGED_CHARS = 300


class InstrumentsUnavailable(Exception):
    """The venue answered with an error, or with something that is not its instrument list."""


@dataclass
class Loaded:
    """One venue's listings from one load, and how many rows were refused."""

    venue: str
    listings: list[Listing] = field(default_factory=list)
    skipped: int = 0


def parse_rows(
    venue: str,
    rows: list[msgspec.Raw],
    row_type: type[Row],
    to_listing: Callable[[Row], Listing | None],
    into: Loaded | None = None,
) -> Loaded:
    """Decode each row as ``row_type`` and turn it into a Listing (None: not a perpetual this
    service copies, left out quietly). A row that does not decode or whose rules are
    impossible is logged, counted in ``copytrade_instrument_rows_skipped_total`` and skipped."""
    loaded = into if into is not None else Loaded(venue)
    for raw in rows:
        try:
            listing = to_listing(msgspec.json.decode(raw, type=row_type))
        except (msgspec.ValidationError, msgspec.DecodeError, ValueError, InvalidOperation) as exc:
            loaded.skipped += 1
            INSTRUMENT_ROWS_SKIPPED.labels(venue=venue).inc()
            text = bytes(raw).decode(errors="replace")[:_MAX_LOGGED_CHARS]
            log.warning("instrument_row_skipped", venue=venue, error=str(exc), row=text)
            continue
        if listing is not None:
            loaded.listings.append(listing)
    return loaded


def optional_decimal(text: str, name: str) -> Decimal | None:
    """A venue's optional amount: "" or "0" means none. Raises ValueError naming the field."""
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"{name}: not a number: {text[:40]!r}") from exc
    return value if value else None
