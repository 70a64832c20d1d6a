"""A wide fan-out recorded in chunks of one transaction, each written while the next is planned."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from app.db.repositories import fills
from app.db.small_pool import SmallPool
from app.metrics import STAGE_LATENCY
from app.sizing.fill_plan import Batch, FillInputs, PlannedOrder

# A fill fans out to up to FIRST_CHUNK subscriptions in one statement (one round trip: what a
# small fan-out's latency is). Wider, it is planned and written in chunks, in one transaction,
# each written while the next is planned: the first FIRST_CHUNK long, so that Postgres starts
# early, then each twice the last, up to CHUNK; the last is what is left, so Postgres finishes
# soon after planning does. A fill to 1,000 followers planned whole, then written whole, left
# each side idle while the other worked. Past 1,000 a chunk saves nothing and more statements
# cost more (chunks of 250 or 500 throughout were no faster for 10,000).
FIRST_CHUNK = 250
CHUNK = 1000


def _all_moves(batches: list[Batch]) -> fills.PositionMoves:
    """Every chunk's position moves, for one statement: each position vector row is then
    rewritten once per fill, not once per chunk."""
    moves = fills.PositionMoves()
    for batch in batches:
        moves.subscription_id += batch.moves.subscription_id
        moves.symbol += batch.moves.symbol
        moves.delta += batch.moves.delta
    return moves


def chunk_bounds(total: int, first: int, largest: int) -> list[tuple[int, int]]:
    """``[start, end)`` of each chunk of ``total`` subscriptions: ``first`` long, then each
    twice the one before up to ``largest``, the last whatever remains."""
    bounds: list[tuple[int, int]] = []
    start, size = 0, max(1, min(first, largest))
    while start < total:
        end = min(total, start + size)
        bounds.append((start, end))
        start, size = end, min(largest, size * 2)
    return bounds


async def record_in_chunks(
    fill_pool: SmallPool,
    inputs: FillInputs,
    shared: fills.FillShared,
    seq: int,
    started: float,
    bounds: list[tuple[int, int]],
    plan: Callable[[int, int], Batch],
    prepare: Callable[[list[PlannedOrder]], object] | None = None,
) -> tuple[fills.Recorded, list[Batch], object]:
    """A large fan-out in one transaction: the fill, then each chunk's orders written
    while the next chunk is planned (the event loop sends a chunk, then plans on while
    Postgres inserts it). ``plan(start, end)`` plans the subscriptions of each chunk of
    ``bounds``; nothing is recorded unless the leader's book is still at ``seq``. ``prepare``
    encodes the orders for Redis while the last chunk is written and committed (never sent
    before the commit: the caller sends what it returns once this returns). Returns what the
    fill's statement recorded, the batches, and what ``prepare`` returned (None without it)."""
    fill = inputs.fill
    batches: list[Batch] = []
    prepared: object = None
    async with fill_pool.connection() as conn, conn.transaction():
        recorded = await fills.insert_fill(conn, fill, shared, seq)
        fill_pk = recorded.fill_pk
        if fill_pk is None:
            return recorded, [], None
        writing: asyncio.Future[None] | None = None
        try:
            for start, end in bounds:
                batch = plan(start, end)
                batches.append(batch)
                if writing is not None:
                    await writing
                # The position moves go last, all chunks' at once (record_positions).
                writing = asyncio.ensure_future(
                    fills.record_orders(conn, fill_pk, shared.created_at, batch.rows, batch.changes)
                )
                await asyncio.sleep(0)  # let it go out before planning the next chunk
            STAGE_LATENCY.labels(stage="sized").observe(time.perf_counter() - started)
            assert writing is not None
            if prepare is not None:
                prepared = prepare([order for b in batches for order in b.produced])
            await writing
            writing = None
            await fills.record_positions(conn, fill.leader_id, _all_moves(batches))
        finally:
            # One statement at a time on a connection: never leave the transaction (to
            # commit or roll back) with a chunk still being written.
            if writing is not None and not writing.done():
                writing.cancel()
                await asyncio.gather(writing, return_exceptions=True)
        if not any(o.status == "pending" for b in batches for o in b.produced):
            await fills.mark_nothing_to_send(conn, fill_pk, inputs.now)
    return recorded, batches, prepared
