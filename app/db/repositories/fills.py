"""The fill path's SQL, on raw asyncpg: one statement records a fill and everything it caused.

One statement is one transaction in autocommit: the fill, its orders, the position moves and
any subscription status change commit together or not at all, in a single round trip. A fill id
seen before inserts nothing, and every other part reads from the fill's insert, so a duplicate
writes nothing anywhere.

A fill fanned out to thousands is written in chunks instead, in one transaction: the fill
first (``insert_fill``), then each chunk's orders (``record_orders``) while the engine plans
the next, so planning and Postgres work side by side rather than one after the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple, cast
from uuid import UUID

import asyncpg

from app.db.repositories import subscription_positions
from app.domain.model import Fill


def _fill_ctes(seq: str) -> str:
    """The book's sequence compared and set (``seq``, the one the plans were made from), the
    fill ($1-$14) and the leader's position move ($15).

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
                             kind, fee, fee_asset, reduce_only, liquidation, dispatched_at)
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 FROM b
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


# Each column of a fill's orders travels as one text, its values joined by a separator, and
# Postgres splits it (string_to_array) and casts it. asyncpg encodes an array element by
# element with two collections.abc isinstance checks per element, at Python speed, for each
# of these 22 columns; str.join is C all the way, about half the CPU per order
# (docs/measurements.md).
# The separators are control characters that no id, symbol, enum, number or JSON text holds
# (msgspec escapes control characters inside JSON strings); ``join_column`` checks it anyway.
SEPARATOR, NULL = "\x1f", "\x1e"


# Each parameter's SQL type, and whether its values are all str already (joined as they are;
# the others go through str(), None as NULL): the 16 order columns, then the position moves
# (3) and the status changes (3).
_COLUMNS = (
    ("varchar", True), ("int2", False), ("uuid", True), ("uuid", True), ("int8", False),
    ("int8", False), ("varchar", True), ("varchar", True), ("numeric", False),
    ("varchar", True), ("bool", False), ("numeric", False), ("varchar", False),
    ("varchar", True), ("varchar", False), ("text", True),
    ("uuid", True), ("varchar", True), ("numeric", False),
    ("uuid", True), ("varchar", True), ("varchar", False),
)  # fmt: skip


def split_column(param: str, sql_type: str) -> str:
    return f"string_to_array({param}, E'\\x1f', E'\\x1e')::{sql_type}[]"


def _position_moves(leader: str, columns: Sequence[str]) -> str:
    """The subscriptions' position moves of f: one vector row per (leader, symbol)."""
    sid, symbol, qty = columns
    return subscription_positions.move_vectors(
        leader, f"f, unnest({sid}, {symbol}, {qty}) AS u(sid, symbol, qty)"
    )


def _order_ctes(leader: str, created: str, valid: str, first: int) -> str:
    """The orders of f (16 columns), the subscriptions' position moves (3) and status changes
    (3), each a joined text parameter, as ``$first`` onwards."""
    p = [f"${n}" for n in range(first, first + len(_COLUMNS))]
    c = [split_column(param, sql_type) for param, (sql_type, _) in zip(p, _COLUMNS, strict=True)]
    return f"""
o AS (
    INSERT INTO follower_order (
        id, fill_pk, leg, follower_id, leader_id, subscription_id,
        leader_equity_snapshot_id, follower_equity_snapshot_id, symbol, side, qty, type,
        reduce_only, limit_price, time_in_force, status, skip_reason, payload,
        created_at, valid_until)
    SELECT u.id, f.id, u.leg, u.follower_id, {leader}, u.subscription_id, u.les, u.fes,
           u.symbol, u.side, u.qty, u.type, u.reduce_only, u.limit_price, u.tif, u.status,
           u.skip_reason, u.payload, {created}, {valid}
      FROM f, unnest({", ".join(c[:16])})
           AS u(id, leg, follower_id, subscription_id, les, fes, symbol, side, qty, type,
                reduce_only, limit_price, tif, status, skip_reason, payload)
), sp AS ({_position_moves(leader, c[16:19])}
), st AS (
    UPDATE subscription s SET status = u.status, status_reason = u.reason, updated_at = now()
      FROM f, unnest({c[19]}, {c[20]}, {c[21]}) AS u(sid, status, reason)
     WHERE s.id = u.sid AND s.status IN ('active', 'close_only')
)"""


# The whole fill in one statement: $16 created_at, $17 valid_until, orders from $18, the
# book's sequence last ($40).
_SEQ_PARAM = f"${18 + len(_COLUMNS)}"
RECORD_FILL = f"WITH {_fill_ctes(_SEQ_PARAM)}, {_order_ctes('$1', '$16', '$17', 18)} {_ANSWER}"
# The chunked path: the fill alone ($16 the sequence), then the orders of each chunk for its
# row id ($1).
INSERT_FILL = f"WITH {_fill_ctes('$16')} {_ANSWER}"
RECORD_ORDERS = (
    f"WITH f AS (SELECT $1::int8 AS id), {_order_ctes('$2', '$3', '$4', 5)} SELECT id FROM f"
)
# The chunked path's position moves, all chunks' at once ($1 the leader, $2-$4 the moves): the
# chunks' statements are given none, so that each vector row is rewritten once per fill.
_MOVE_COLUMNS = _COLUMNS[16:19]
RECORD_POSITIONS = "WITH f AS (SELECT), sp AS ({}) SELECT".format(
    _position_moves("$1", [split_column(f"${n}", t) for n, (t, _) in enumerate(_MOVE_COLUMNS, 2)])
)
MARK_NOTHING_TO_SEND = "UPDATE leader_fill SET dispatched_at = $2 WHERE id = $1"


@dataclass
class OrderRows:
    """The follower_order rows of one fill, column by column (ids as their text)."""

    id: list[str] = field(default_factory=list)
    leg: list[int] = field(default_factory=list)
    follower_id: list[str] = field(default_factory=list)
    subscription_id: list[str] = field(default_factory=list)
    leader_equity_snapshot_id: list[int | None] = field(default_factory=list)
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
    payload: list[str] = field(default_factory=list)

    def columns(self) -> list[list[Any]]:
        return [
            self.id, self.leg, self.follower_id, self.subscription_id,
            self.leader_equity_snapshot_id, self.follower_equity_snapshot_id, self.symbol,
            self.side, self.qty, self.type, self.reduce_only, self.limit_price,
            self.time_in_force, self.status, self.skip_reason, self.payload,
        ]  # fmt: skip


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


def _fill_args(fill: Fill, kind: str, dispatched_at: datetime | None, delta: Decimal) -> list[Any]:
    return [
        fill.leader_id, fill.fill_id, fill.symbol, fill.side.value, fill.qty, fill.price,
        fill.event_at, fill.received_at, kind, fill.fee, fill.fee_asset, fill.reduce_only,
        fill.liquidation, dispatched_at, delta,
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


def _order_args(orders: OrderRows, moves: PositionMoves, changes: StatusChanges) -> list[str]:
    columns = (
        *orders.columns(),
        moves.subscription_id, moves.symbol, moves.delta,
        changes.subscription_id, changes.status, changes.reason,
    )  # fmt: skip
    return [join_column(values, text) for values, (_, text) in zip(columns, _COLUMNS, strict=True)]


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
    kind: str,
    created_at: datetime,
    valid_until: datetime,
    orders: OrderRows,
    leader_delta: Decimal,
    moves: PositionMoves,
    changes: StatusChanges,
    seq: int,
) -> Recorded:
    """Record ``fill`` and what it caused, if the book is still at ``seq`` (what the orders
    were planned from).

    ``kind`` is "trade" for a leader fill, "sync" for copy_open_positions on subscribe.
    """
    # Nothing to send (every order skipped): dispatched as it commits.
    dispatched_at = None if "pending" in orders.status else created_at
    row = await conn.fetchrow(
        RECORD_FILL,
        *_fill_args(fill, kind, dispatched_at, leader_delta),
        created_at,
        valid_until,
        *_order_args(orders, moves, changes),
        seq,
    )
    assert row is not None  # a SELECT without FROM: always one row
    return Recorded(row[0], row[1])


async def insert_fill(
    conn: asyncpg.Connection, fill: Fill, kind: str, leader_delta: Decimal, seq: int
) -> Recorded:
    """The chunked path's first step, in the caller's transaction: the fill and the leader's
    position, if the book is still at ``seq``. ``record_orders`` follows for each chunk."""
    row = await conn.fetchrow(INSERT_FILL, *_fill_args(fill, kind, None, leader_delta), seq)
    assert row is not None
    return Recorded(row[0], row[1])


async def record_orders(
    conn: asyncpg.Connection,
    fill_pk: int,
    leader_id: UUID,
    created_at: datetime,
    valid_until: datetime,
    orders: OrderRows,
    moves: PositionMoves,
    changes: StatusChanges,
) -> None:
    """One chunk of a fill's orders, position moves and status changes."""
    await conn.fetchval(
        RECORD_ORDERS,
        fill_pk,
        leader_id,
        created_at,
        valid_until,
        *_order_args(orders, moves, changes),
    )


async def record_positions(conn: asyncpg.Connection, leader_id: UUID, moves: PositionMoves) -> None:
    """The chunked path's last step, in the caller's transaction: the position moves of every
    chunk (``record_orders`` was given none)."""
    if not moves.subscription_id:
        return
    columns: tuple[Sequence[object], ...] = (moves.subscription_id, moves.symbol, moves.delta)
    joined = [join_column(v, text) for v, (_, text) in zip(columns, _MOVE_COLUMNS, strict=True)]
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
