"""The vector path's columns of a leader's book: per leader symbol, the subscriptions that
``app.domain.vector_sizing`` sizes, as integer rows kept in step with the book.

A leader symbol's columns are built on its first fill after the book is loaded, and moved
after each fill that commits: positions and statuses from the fill's own plans, equities from
the equity cache's list of changed followers. A fill that moved a follower symbol some other
columns also hold (a renamed symbol, a copy_open_positions) drops those columns; they are
built again on their symbol's next fill. The book's reload drops them all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING
from uuid import UUID

from app.domain.model import EquityReading, Fill
from app.domain.plan_model import InstrumentRules, Plan
from app.sizing.books import Applied, LeaderBook, SubscriptionBook
from app.sizing.equity_cache import EquityCache

# app.domain.vector_sizing (and with it numpy, a tenth of the service's import time) is
# imported by the first book wide enough for the vector path, not by every process that
# imports the engine: most books, and the CLI and test processes, never need it. After the
# first time the function-level import is a lookup in sys.modules (docs/measurements.md).
if TYPE_CHECKING:
    from app.domain.vector_sizing import Sized, TargetRows

# A subscription's follower symbol and rules for a leader symbol; None: its venue does not
# list it (the planner records that).
Placement = Callable[[SubscriptionBook, str], tuple[str, InstrumentRules] | None]
_ZERO = Decimal(0)

# A book covering fewer subscriptions than this is sized by the planner alone: the kernel makes
# a few dozen numpy calls per fill whatever its row count, which costs more than the planner
# for a handful of rows and only pays off on wider books (docs/measurements.md).
MIN_ROWS = 24


@dataclass(slots=True)
class SymbolColumns:
    """One leader symbol's vector rows: which subscriptions, in which follower symbol."""

    rows: TargetRows
    row_of: list[int]  # per subscription of the book: its row, or -1 (the planner's)
    subs: list[SubscriptionBook]  # per row
    symbols: list[str]  # per row, the follower symbol
    rules: list[InstrumentRules]  # per row
    readings: list[EquityReading | None]  # per row, what the equity columns hold
    followers: dict[UUID, list[int]]  # follower id -> its rows
    cover: frozenset[str]  # every follower symbol of the rows
    equity_cursor: int = 0


@dataclass(frozen=True, slots=True)
class FillVector:
    """One fill sized by the vector path: the columns it read and what they gave."""

    columns: SymbolColumns
    sized: Sized


def build(
    subscriptions: list[SubscriptionBook],
    leader_symbol: str,
    place: Placement,
    equity: EquityCache,
) -> SymbolColumns:
    """The columns of ``subscriptions`` for fills in ``leader_symbol``, with the equity
    cache's readings as they are now."""
    from app.domain.vector_sizing import TargetRows, covers

    eligible: list[tuple[int, SubscriptionBook, str, InstrumentRules]] = []
    for index, sub in enumerate(subscriptions):
        placed = place(sub, leader_symbol)
        if placed is not None and covers(sub.settings):
            eligible.append((index, sub, *placed))
    cursor = equity.changes_cursor
    readings = [equity.follower(sub.follower_id) for _, sub, _, _ in eligible]
    rows = TargetRows(
        leader_symbol,
        [
            (sub.settings, rules, sub.positions.get(symbol, _ZERO))
            for _, sub, symbol, rules in eligible
        ],
        readings,
    )
    row_of = [-1] * len(subscriptions)
    followers: dict[UUID, list[int]] = {}
    for row, (index, sub, _, _) in enumerate(eligible):
        row_of[index] = row
        followers.setdefault(sub.follower_id, []).append(row)
    return SymbolColumns(
        rows=rows,
        row_of=row_of,
        subs=[sub for _, sub, _, _ in eligible],
        symbols=[symbol for _, _, symbol, _ in eligible],
        rules=[rules for _, _, _, rules in eligible],
        readings=readings,
        followers=followers,
        cover=frozenset(symbol for _, _, symbol, _ in eligible),
        equity_cursor=cursor,
    )


def _refresh_equity(columns: SymbolColumns, equity: EquityCache) -> None:
    """Bring the equity columns up to the cache: the followers changed since last time."""
    cursor, changed = equity.follower_changes(columns.equity_cursor)
    if changed is None:
        changed = list(columns.followers)
    columns.equity_cursor = cursor
    rows, readings = columns.rows, columns.readings
    for follower_id in changed:
        for row in columns.followers.get(follower_id, ()):
            reading = equity.follower(follower_id)
            if reading is not readings[row]:
                readings[row] = reading
                rows.set_equity(row, reading)


def wide_enough(book: LeaderBook, min_rows: int) -> bool:
    """Tell whether the vector path covers at least ``min_rows`` of the book's
    subscriptions (below that the planner sizes the fill alone)."""
    if len(book.subscriptions) < min_rows:
        return False
    if book.covered is None:
        from app.domain.vector_sizing import covers

        book.covered = sum(1 for sub in book.subscriptions if covers(sub.settings))
    return book.covered >= min_rows


def size_fill(
    book: LeaderBook,
    fill: Fill,
    leader_before: Decimal,
    leader_equity: EquityReading | None,
    now: datetime,
    equity: EquityCache,
    place: Placement,
) -> FillVector | None:
    """Size the book's vector rows for one fill; None when the planner sizes them all."""
    columns = book.columns.get(fill.symbol)
    if columns is None:
        columns = build(book.subscriptions, fill.symbol, place, equity)
        book.columns[fill.symbol] = columns
    _refresh_equity(columns, equity)
    sized = columns.rows.size(fill, leader_before, leader_equity, now)
    return None if sized is None else FillVector(columns, sized)


def vector_plan(
    vector: FillVector, index: int, sub: SubscriptionBook
) -> tuple[Plan, str, InstrumentRules, EquityReading | None, Decimal] | None:
    """The plan of the book's ``index``-th subscription, with its symbol, rules, equity
    reading and position before; None when the planner sizes it."""
    columns = vector.columns
    row = columns.row_of[index]
    if row < 0 or vector.sized.fallback[row]:
        return None
    symbol, reading = columns.symbols[row], columns.readings[row]
    before = sub.positions.get(symbol, _ZERO)
    result = vector.sized.plan(row, symbol, before, reading, sub.settings.multiplier)
    return result, symbol, columns.rules[row], reading, before


def committed(book: LeaderBook, vector: FillVector | None, applied: Iterable[Applied]) -> None:
    """Move the columns the way a recorded fill moved the book (after ``move_book``)."""
    used = None
    if vector is not None:
        used = vector.columns
        used.rows.commit(vector.sized)
        for row in vector.sized.fallback.nonzero()[0].tolist():
            # Sized by the planner: read back what it moved.
            sub = used.subs[row]
            used.rows.set_position(row, sub.positions.get(used.symbols[row], _ZERO))
            used.rows.set_status(row, sub.settings.status)
    applied = list(applied)
    moved = {symbol for _, symbol, delta, _ in applied if delta}
    for leader_symbol, columns in list(book.columns.items()):
        if columns is not used and not columns.cover.isdisjoint(moved):
            del book.columns[leader_symbol]
    # A status is the subscription's, not its symbol's: every symbol's rows take it (a floor
    # hit in one symbol must not leave another's row free to open).
    for sub, _, _, status in applied:
        if status is None:
            continue
        for columns in book.columns.values():
            for row in columns.followers.get(sub.follower_id, ()):
                if columns.subs[row] is sub:
                    columns.rows.set_status(row, status)
