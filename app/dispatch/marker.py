"""Marks fills whose orders are all enqueued as dispatched, in batches, off the hot path.

Losing a mark (a crash before the batch is written) costs nothing but a resend by the outbox
relay, which the enqueue script recognises: each order is in its stream once either way.
"""

from __future__ import annotations

import asyncio

import asyncpg
import structlog

from app.db.repositories.fills import mark_dispatched
from app.loops import Backoff, SupervisedTask

log = structlog.get_logger(__name__)

BATCH = 1000


class DispatchMarker:
    def __init__(self, pool: asyncpg.Pool, interval_s: float = 0.05) -> None:
        self._pool = pool
        self._interval_s = interval_s
        self._pending: list[int] = []
        self._wake = asyncio.Event()
        self._loop = SupervisedTask("dispatch_marker", self._run, Backoff(0.1, 5.0))

    def add(self, fill_pks: tuple[int, ...]) -> None:
        if fill_pks:
            self._pending.extend(fill_pks)
            self._wake.set()

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        await self.flush()  # drain: whatever is still held is marked before shutdown

    async def flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:BATCH], self._pending[BATCH:]
            try:
                async with self._pool.acquire() as conn:
                    await mark_dispatched(conn, batch)
            except BaseException:
                self._pending[:0] = batch  # keep them for the next try (or the relay)
                raise
            log.debug("fills_marked_dispatched", fills=len(batch))

    async def _run(self, backoff: Backoff) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(self._interval_s)  # let a batch gather
            await self.flush()
            backoff.reset()
