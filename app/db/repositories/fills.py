"""The fill path's SQL, on raw asyncpg: one statement records a fill and everything it caused.

One statement is one transaction in autocommit: the fill, its orders, the position moves and
any subscription status change commit together or not at all, in a single round trip. A fill id
seen before inserts nothing, and every other part reads from the fill's insert, so a duplicate
writes nothing anywhere.

A fill fanned out to thousands is written in chunks instead, in one transaction: the fill
first (``insert_fill``), then each chunk's status changes and its orders by COPY
(``record_orders``) while the engine plans the next, so planning and Postgres work side by
side rather than one after the other, and last every chunk's position moves at once
(``record_positions``).

An order row holds the order's own facts; what all the orders of a fill share is on the
fill's row, once (``FillShared``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from itertools import repeat
from typing import Any, NamedTuple, cast
from uuid import UUID

import asyncpg

from app.db.repositories import subscription_positions
from app.domain.model import Fill


def _fill_ctes(seq: str) -> str:
    """The book's sequence compared and set (``seq``, the one the plans were made from), the
    fill ($1-$14, and what its orders share, $16-$20) and the leader's position move ($15).

    Every part reads from the one before: a sequence that moved since the plans were made
    (another instance recorded a fill, an executor corrected a position) sets nothing, and
    a duplicate fill id inserts no fill; either way nothing else is written. The UPDATE
    locks the leader's row until commit, so two instances record one leader's fills one at
    a time, each against the other's result.
    """
    return f"""
b AS (
    UPDATE leader SET book_seq = book_seq + 1 WHERE id = $1 AND book_seq = {seq}
    RETURNING book_seq
), f AS (
    INSERT INTO leader_fill (leader_id, fill_id, symbol, side, qty, price, event_at, received_at,
                             kind, fee, fee_asset, reduce_only, liquidation, dispatched_at,
                             valid_until, leader_equity, leader_equity_snapshot_id,
                             leader_position_before, leader_position_after)
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
           $16, $17, $18, $19, $20 FROM b
    ON CONFLICT (leader_id, fill_id) DO NOTHING
    RETURNING id
), lp AS (
    INSERT INTO leader_position AS p (leader_id, symbol, qty, updated_at)
    SELECT $1, $3, $15, now() FROM f
    ON CONFLICT (leader_id, symbol) DO UPDATE SET qty = p.qty + EXCLUDED.qty, updated_at = now()
)"""


# What the statements answer: the fill's row id (NULL: a duplicate, or nothing recorded) and
# the book's new sequence (NULL: it had moved, nothing was recorded).
_ANSWER = "SELECT (SELECT id FROM f), (SELECT book_seq FROM b)"


# In the one-statement path, each column of a fill's orders travels as one text, its values
# joined by a separator, and Postgres splits it (string_to_array) and casts it. asyncpg
# encodes an array element by element with two collections.abc isinstance checks per element,
# at Python speed, for each column; str.join is C all the way, about half the CPU per order
# (docs/measurements.md).
# The separators are control characters that no id, symbol, enum, number or clamp name holds;
# ``join_column`` checks it anyway.
SEPARATOR, NULL = "\x1f", "\x1e"


# The order row's columns as OrderRows holds them, each with its SQL type and whether its
# values are all str already (joined as they are; the others go through str(), None as NULL).
ORDER_COLUMNS = (
    ("id", "varchar", True), ("leg", "int2", False), ("follower_id", "uuid", True),
    ("subscription_id", "uuid", True), ("follower_equity_snapshot_id", "int8", False),
    ("symbol", "varchar", True), ("side", "varchar", True), ("qty", "numeric", False),
    ("type", "varchar", True), ("reduce_only", "bool", False),
    ("limit_price", "numeric", False), ("time_in_force", "varchar", False),
    ("status", "varchar", True), ("skip_reason", "varchar", False),
    ("mode", "varchar", True), ("follower_equity", "numeric", False),
    ("ratio", "numeric", False), ("multiplier", "numeric", True),
    ("effect", "varchar", True), ("follower_position_before", "numeric", True),
    ("follower_position_after", "numeric", True), ("target", "numeric", False),
    ("raw_qty", "numeric", False), ("residue", "numeric", True),
    ("clamps", "text", False), ("qty_step", "numeric", True),
    ("held_reason", "varchar", False), ("leader_position_before", "numeric", False),
    ("leader_position_after", "numeric", False),
)  # fmt: skip
# The subscriptions' position moves (3), then their status changes (3).
_MOVE_COLUMNS = (
    ("uuid", True), ("varchar", True), ("numeric", False),
    ("uuid", True), ("varchar", True), ("varchar", False),
)  # fmt: skip
# What binary COPY writes: the fill's row id and the orders' time, then OrderRows' columns.
COPY_COLUMNS = ("fill_pk", "created_at", *(name for name, _, _ in ORDER_COLUMNS))


def split_column(param: str, sql_type: str) -> str:
    return f"string_to_array({param}, E'\\x1f', E'\\x1e')::{sql_type}[]"


def _position_moves(leader: str, columns: Sequence[str]) -> str:
    """The subscriptions' position moves of f: one vector row per (leader, symbol)."""
    sid, symbol, qty = columns
    return subscription_positions.move_vectors(
        leader, f"f, unnest({sid}, {symbol}, {qty}) AS u(sid, symbol, qty)"
    )


def _order_cte(created: str, first: int) -> str:
    """The orders of f, each OrderRows column a joined text parameter, as ``$first`` on."""
    names = [name for name, _, _ in ORDER_COLUMNS]
    columns = [
        split_column(f"${n}", sql_type)
        for n, (_, sql_type, _) in enumerate(ORDER_COLUMNS, start=first)
    ]
    return f"""
o AS (
    INSERT INTO follower_order (fill_pk, created_at, {", ".join(names)})
    SELECT f.id, {created}, u.*
      FROM f, unnest({", ".join(columns)}) AS u({", ".join(names)})
)"""


def _change_cte(first: int) -> str:
    """The subscriptions' status changes (3) caused by f, each a joined text parameter, as
    ``$first`` onwards."""
    c = [
        split_column(f"${n}", sql_type) for n, (sql_type, _) in enumerate(_MOVE_COLUMNS[3:], first)
    ]
    return f"""
st AS (
    UPDATE subscription s SET status = u.status, status_reason = u.reason, updated_at = now()
      FROM f, unnest({c[0]}, {c[1]}, {c[2]}) AS u(sid, status, reason)
     WHERE s.id = u.sid AND s.status IN ('active', 'close_only')
)"""


def _move_ctes(leader: str, first: int) -> str:
    """The subscriptions' position moves (3) and status changes (3) caused by f, each a joined
    text parameter, as ``$first`` onwards; ``leader`` the fill's leader."""
    c = [
        split_column(f"${n}", sql_type) for n, (sql_type, _) in enumerate(_MOVE_COLUMNS[:3], first)
    ]
    return f"""
sp AS ({_position_moves(leader, c)}
), {_change_cte(first + 3)}"""


# The whole fill in one statement: $21 the orders' created_at, the orders from $22, then the
# moves, the book's sequence last.
_MOVES_FROM = 22 + len(ORDER_COLUMNS)
_SEQ_PARAM = f"${_MOVES_FROM + len(_MOVE_COLUMNS)}"
RECORD_FILL = (
    f"WITH {_fill_ctes(_SEQ_PARAM)}, {_order_cte('$21', 22)}, "
    f"{_move_ctes('$1', _MOVES_FROM)} {_ANSWER}"
)
# The chunked path: the fill alone ($21 the sequence), then each chunk's status changes for
# the fill's row id ($1) and its orders by COPY, and last the position moves of all chunks at
# once ($1 the leader, $2-$4 the moves), so that each vector row is rewritten once per fill.
INSERT_FILL = f"WITH {_fill_ctes('$21')} {_ANSWER}"
RECORD_CHANGES = f"WITH f AS (SELECT $1::int8 AS id), {_change_cte(2)} SELECT id FROM f"
RECORD_POSITIONS = "WITH f AS (SELECT), sp AS ({}) SELECT".format(
    _position_moves(
        "$1", [split_column(f"${n}", t) for n, (t, _) in enumerate(_MOVE_COLUMNS[:3], 2)]
    )
)
MARK_NOTHING_TO_SEND = "UPDATE leader_fill SET dispatched_at = $2 WHERE id = $1"


@dataclass
class OrderRows:
    """The follower_order rows of one fill, column by column (ids as their text), in
    ORDER_COLUMNS' order."""

    id: list[str] = field(default_factory=list)
    leg: list[int] = field(default_factory=list)
    follower_id: list[str] = field(default_factory=list)
    subscription_id: list[str] = field(default_factory=list)
    follower_equity_snapshot_id: list[int | None] = field(default_factory=list)
    symbol: list[str] = field(default_factory=list)
    side: list[str] = field(default_factory=list)
    qty: list[Decimal] = field(default_factory=list)
    type: list[str] = field(default_factory=list)
    reduce_only: list[bool] = field(default_factory=list)
    limit_price: list[Decimal | None] = field(default_factory=list)
    time_in_force: list[str | None] = field(default_factory=list)
    status: list[str] = field(default_factory=list)
    skip_reason: list[str | None] = field(default_factory=list)
    # The explanation's amounts as the decimal texts the order message holds (formatted once
    # for both): numeric literals Postgres reads as they are.
    mode: list[str] = field(default_factory=list)
    follower_equity: list[str | None] = field(default_factory=list)
    ratio: list[str | None] = field(default_factory=list)
    multiplier: list[str] = field(default_factory=list)
    effect: list[str] = field(default_factory=list)
    follower_position_before: list[str] = field(default_factory=list)
    follower_position_after: list[str] = field(default_factory=list)
    target: list[str | None] = field(default_factory=list)
    raw_qty: list[str | None] = field(default_factory=list)
    residue: list[str] = field(default_factory=list)
    clamps: list[str | None] = field(default_factory=list)
    qty_step: list[str] = field(default_factory=list)
    held_reason: list[str | None] = field(default_factory=list)
    leader_position_before: list[Decimal | None] = field(default_factory=list)
    leader_position_after: list[Decimal | None] = field(default_factory=list)

    def columns(self) -> list[list[Any]]:
        return [getattr(self, name) for name, _, _ in ORDER_COLUMNS]


@dataclass
class PositionMoves:
    """Signed position deltas per (subscription, follower symbol)."""

    subscription_id: list[str] = field(default_factory=list)
    symbol: list[str] = field(default_factory=list)
    delta: list[Decimal] = field(default_factory=list)


@dataclass
class StatusChanges:
    subscription_id: list[str] = field(default_factory=list)
    status: list[str] = field(default_factory=list)
    reason: list[str | None] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FillShared:
    """What the fill's row records besides the fill: how it moves the leader's position, and
    what every order of it shares (its time, validity and the leader's side of the
    explanation)."""

    kind: str  # "trade" for a leader fill, "sync" for an event that plans follower orders
    leader_delta: Decimal
    created_at: datetime
    valid_until: datetime
    leader_equity: Decimal | None
    leader_equity_snapshot_id: int | None
    leader_position_before: Decimal
    leader_position_after: Decimal


def _fill_args(fill: Fill, shared: FillShared, dispatched_at: datetime | None) -> list[Any]:
    return [
        fill.leader_id, fill.fill_id, fill.symbol, fill.side.value, fill.qty, fill.price,
        fill.event_at, fill.received_at, shared.kind, fill.fee, fill.fee_asset,
        fill.reduce_only, fill.liquidation, dispatched_at, shared.leader_delta,
        shared.valid_until, shared.leader_equity, shared.leader_equity_snapshot_id,
        shared.leader_position_before, shared.leader_position_after,
    ]  # fmt: skip


def join_column(values: Sequence[object], text: bool) -> str:
    """One column as a text for ``split_column``; ``text``: every value is a str (or a StrEnum)."""
    if text:
        joined = SEPARATOR.join(cast(Sequence[str], values))
    else:
        joined = SEPARATOR.join(NULL if v is None else str(v) for v in values)
    # A separator inside a value would shift every value after it; an empty text would be
    # an empty array, not one empty string.
    if joined.count(SEPARATOR) != max(len(values) - 1, 0) or (values and not joined):
        raise ValueError("a value holds the column separator or is empty")
    return joined


def _order_args(orders: OrderRows) -> list[str]:
    return [
        join_column(values, text)
        for values, (_, _, text) in zip(orders.columns(), ORDER_COLUMNS, strict=True)
    ]


def _move_args(moves: PositionMoves, changes: StatusChanges) -> list[str]:
    columns: tuple[Sequence[object], ...] = (
        moves.subscription_id, moves.symbol, moves.delta,
        changes.subscription_id, changes.status, changes.reason,
    )  # fmt: skip
    return [
        join_column(values, text) for values, (_, text) in zip(columns, _MOVE_COLUMNS, strict=True)
    ]


def _change_args(changes: StatusChanges) -> list[str]:
    columns: tuple[Sequence[object], ...] = (
        changes.subscription_id,
        changes.status,
        changes.reason,
    )
    return [
        join_column(values, text)
        for values, (_, text) in zip(columns, _MOVE_COLUMNS[3:], strict=True)
    ]


class Recorded(NamedTuple):
    """What recording a fill did: ``seq`` None, nothing (the book had moved: plan again);
    else the book's new sequence, and the fill's row id (None: a duplicate fill id)."""

    fill_pk: int | None
    seq: int | None

    @property
    def moved(self) -> bool:
        return self.seq is None


async def record_fill(
    conn: asyncpg.Connection,
    fill: Fill,
    shared: FillShared,
    orders: OrderRows,
    moves: PositionMoves,
    changes: StatusChanges,
    seq: int,
) -> Recorded:
    """Record ``fill`` and what it caused in one statement, if the book is still at ``seq``
    (what the orders were planned from)."""
    # Nothing to send (every order skipped): dispatched as it commits.
    dispatched_at = None if "pending" in orders.status else shared.created_at
    row = await conn.fetchrow(
        RECORD_FILL,
        *_fill_args(fill, shared, dispatched_at),
        shared.created_at,
        *_order_args(orders),
        *_move_args(moves, changes),
        seq,
    )
    assert row is not None  # a SELECT without FROM: always one row
    return Recorded(row[0], row[1])


async def insert_fill(
    conn: asyncpg.Connection, fill: Fill, shared: FillShared, seq: int
) -> Recorded:
    """The chunked path's first step, in the caller's transaction: the fill and the leader's
    position, if the book is still at ``seq``. ``record_orders`` follows for each chunk."""
    row = await conn.fetchrow(INSERT_FILL, *_fill_args(fill, shared, None), seq)
    assert row is not None
    return Recorded(row[0], row[1])


async def record_orders(
    conn: asyncpg.Connection,
    fill_pk: int,
    created_at: datetime,
    orders: OrderRows,
    changes: StatusChanges,
) -> None:
    """One chunk of a fill's status changes, a step of their own, then its orders by COPY (no
    statement to parse, no arrays to split and cast). The chunks' position moves are written
    after the last chunk, all at once (``record_positions``).

    The changes go first: the statement leaves at once and Postgres runs it while the engine
    plans the next chunk; the COPY follows when it answers (asyncpg writes a COPY's data
    without waiting for the server, but sends no statement before the last one's answer).
    """
    if changes.subscription_id:
        await conn.fetchval(RECORD_CHANGES, fill_pk, *_change_args(changes))
    if not orders.id:
        return
    await conn.copy_to_table(
        "follower_order",
        # A buffer, not bytes: asyncpg takes bytes for a file's path.
        source=memoryview(copy_text(fill_pk, created_at, orders)),
        columns=COPY_COLUMNS,
        format="text",
    )


# COPY's text format, not its binary one: asyncpg encodes a Decimal to binary numeric several
# times slower than str(), and the row's amounts arrive as texts already (docs/measurements.md).
# No value of an order row holds a tab, a newline or a backslash, the three characters the
# format escapes; ``copy_text`` checks it anyway.
_COPY_NULL = "\\N"


def copy_text(fill_pk: int, created_at: datetime, orders: OrderRows) -> bytes:
    """The rows of ``orders`` as COPY's text format, for the fill ``fill_pk``."""
    count = len(orders.id)
    columns = [
        values if text else [_COPY_NULL if v is None else str(v) for v in values]
        for values, (_, _, text) in zip(orders.columns(), ORDER_COLUMNS, strict=True)
    ]
    fixed = (repeat(str(fill_pk), count), repeat(created_at.isoformat(), count))
    data = "\n".join(map("\t".join, zip(*fixed, *columns, strict=True))) + "\n"
    if (
        data.count("\n") != count
        or data.count("\t") != count * (len(COPY_COLUMNS) - 1)
        or data.count("\\") != data.count(_COPY_NULL)
    ):
        raise ValueError("a value holds a tab, a newline or a backslash")
    return data.encode()


async def record_positions(conn: asyncpg.Connection, leader_id: UUID, moves: PositionMoves) -> None:
    """The chunked path's last step, in the caller's transaction: the position moves of every
    chunk (``record_orders`` writes none)."""
    if not moves.subscription_id:
        return
    columns: tuple[Sequence[object], ...] = (moves.subscription_id, moves.symbol, moves.delta)
    joined = [join_column(v, text) for v, (_, text) in zip(columns, _MOVE_COLUMNS[:3], strict=True)]
    await conn.execute(RECORD_POSITIONS, leader_id, *joined)


async def mark_nothing_to_send(conn: asyncpg.Connection, fill_pk: int, at: datetime) -> None:
    """A chunked fill whose every order was skipped is dispatched as it commits."""
    await conn.execute(MARK_NOTHING_TO_SEND, fill_pk, at)


# Read first: a write that lands while the rest of the book is read moves the sequence past
# this one, so the first fill planned from the book records nothing and reloads it.
LOAD_BOOK_SEQ = "SELECT book_seq FROM leader WHERE id = $1"
# account_venue: the follower's connected exchange account, its venue by default.
LOAD_SUBSCRIPTIONS = """
SELECT s.id, s.follower_id, s.multiplier, s.status, s.sizing, fa.kind AS account_venue
  FROM subscription s
  LEFT JOIN follower_account fa ON fa.follower_id = s.follower_id
 WHERE s.leader_id = $1 AND s.status IN ('active', 'close_only')
"""
LOAD_LEADER_POSITIONS = "SELECT symbol, qty FROM leader_position WHERE leader_id = $1"
LOAD_SUBSCRIPTION_POSITIONS = subscription_positions.LOAD_BOOK_POSITIONS
# The last price of each symbol the leader traded: marks for gross exposure after a restart.
LOAD_LAST_PRICES = """
SELECT DISTINCT ON (symbol) symbol, price
  FROM leader_fill WHERE leader_id = $1
 ORDER BY symbol, id DESC
"""
LOAD_INSTRUMENTS = "SELECT symbol, qty_step, min_qty, min_notional, price_step FROM instrument"
LOAD_INSTRUMENT = LOAD_INSTRUMENTS + " WHERE symbol = $1"


@dataclass(frozen=True, slots=True)
class BookRows:
    seq: int
    subscriptions: list[asyncpg.Record]
    leader_positions: list[asyncpg.Record]
    # subscription_positions.LOAD_BOOK_POSITIONS: a position is the sum of its rows, and
    # subscriptions that are not live may be among them.
    subscription_positions: list[asyncpg.Record]
    last_prices: list[asyncpg.Record]


async def load_book(conn: asyncpg.Connection, leader_id: UUID) -> BookRows:
    """A leader's live subscriptions, positions (its own and theirs) and last prices."""
    seq = await conn.fetchval(LOAD_BOOK_SEQ, leader_id)
    if seq is None:
        # No fill statement could ever match: fail it rather than plan again forever.
        raise LookupError(f"leader {leader_id}: no such leader")
    return BookRows(
        seq,
        await conn.fetch(LOAD_SUBSCRIPTIONS, leader_id),
        await conn.fetch(LOAD_LEADER_POSITIONS, leader_id),
        await conn.fetch(LOAD_SUBSCRIPTION_POSITIONS, leader_id),
        await conn.fetch(LOAD_LAST_PRICES, leader_id),
    )


async def load_instruments(conn: asyncpg.Connection, symbol: str | None = None) -> list[Any]:
    if symbol is None:
        return list(await conn.fetch(LOAD_INSTRUMENTS))
    return list(await conn.fetch(LOAD_INSTRUMENT, symbol))


# Every order of these fills is in its stream. An executor may have reported first: its
# status stands (the order row is not touched at all).
MARK_DISPATCHED = (
    "UPDATE leader_fill SET dispatched_at = now()"
    " WHERE id = ANY($1::int8[]) AND dispatched_at IS NULL"
)


async def mark_dispatched(conn: asyncpg.Connection, fill_pks: list[int]) -> None:
    await conn.execute(MARK_DISPATCHED, fill_pks)
