"""Every write of the positions sizing tracks per subscription, and the read of a whole book.

They are stored in two parts (migration 0023), which the ``subscription_position`` view adds
up for every other reader:

- ``subscription_position_vector``: per (leader, follower symbol), the ids of the
  subscriptions ever moved (uuid[]) and their quantities (numeric[], the same order). A fill
  moves up to every subscription of its leader and rewrites one row per symbol rather than
  one row per subscription (docs/measurements.md). It is merged in the row's ON CONFLICT
  update, which locks the row and reads its latest version: a concurrent move of the same
  row waits for this one and adds to its result.
- ``subscription_position_correction``: per (subscription, symbol), what executor reports and
  drift corrections moved it by. They move one subscription at a time, from transactions of
  their own, at the rate of reports: a row of its own each costs what it did before, where
  rewriting a whole vector would cost as much as a fill.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from uuid import UUID

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


def move_vectors(leader: str, moves: str) -> str:
    """The statement that adds position moves to their leader's vectors: ``moves`` a FROM
    list whose rows are ``u(sid, symbol, qty)`` (qty: the delta), ``leader`` its leader id.

    The ids are only set anew when a subscription is appended: otherwise the update hands
    back the stored value itself, and its TOAST chunks are kept rather than written again.
    """
    return f"""
INSERT INTO subscription_position_vector AS p (leader_id, symbol, subscription_ids, qtys)
SELECT {leader}, u.symbol, array_agg(u.sid), array_agg(u.qty)
  FROM {moves}
 GROUP BY u.symbol
ON CONFLICT (leader_id, symbol) DO UPDATE
   SET (subscription_ids, qtys, updated_at) = (
       SELECT CASE WHEN cardinality(m.added) = 0 THEN p.subscription_ids
                   ELSE p.subscription_ids || m.added END,
              m.merged, now()
         FROM subscription_position_merge(
                  p.subscription_ids, p.qtys, EXCLUDED.subscription_ids, EXCLUDED.qtys) AS m)"""


_MOVE = move_vectors(
    "$1", "unnest($2::uuid[], $3::varchar[], $4::numeric[]) AS u(sid, symbol, qty)"
)


async def move(
    conn: asyncpg.Connection,
    leader_id: UUID,
    subscription_ids: Sequence[UUID | str],
    symbols: Sequence[str],
    deltas: Sequence[Decimal],
) -> None:
    """Move these subscriptions of one leader by ``deltas``, in the caller's transaction
    (each subscription once per symbol)."""
    await conn.execute(
        _MOVE, leader_id, [str(s) for s in subscription_ids], list(symbols), list(deltas)
    )


_CORRECT = text(
    "INSERT INTO subscription_position_correction AS p (subscription_id, symbol, qty)"
    " VALUES (:s, :symbol, :d) ON CONFLICT (subscription_id, symbol)"
    " DO UPDATE SET qty = p.qty + EXCLUDED.qty, updated_at = now()"
)


async def correct(
    session: AsyncSession, subscription_id: UUID, symbol: str, delta: Decimal
) -> None:
    """Move one subscription's position by ``delta`` (an executor's report, a drift
    correction), in the session's transaction."""
    await session.execute(_CORRECT, {"s": subscription_id, "symbol": symbol, "d": delta})


# A leader's book: the positions of every subscription of the leader, from the vectors directly
# (the view would scan each vector once per subscription), then the corrections of its live
# subscriptions. A subscription's position in a symbol is the sum of its rows: adding them up
# here (an aggregate per position) cost several times the read itself. Subscriptions that are
# not live may be among them: the caller keeps the live ones (a join here would probe the
# subscriptions once per position).
LOAD_BOOK_POSITIONS = """
SELECT u.sid AS subscription_id, v.symbol, u.qty
  FROM subscription_position_vector v
 CROSS JOIN LATERAL unnest(v.subscription_ids, v.qtys) AS u(sid, qty)
 WHERE v.leader_id = $1
UNION ALL
SELECT c.subscription_id, c.symbol, c.qty
  FROM subscription_position_correction c
  JOIN subscription s ON s.id = c.subscription_id
 WHERE s.leader_id = $1 AND s.status IN ('active', 'close_only')
"""
