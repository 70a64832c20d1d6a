"""A few dedicated Postgres connections for the fill statement, without a pool's round trip.

asyncpg's pool releases a connection through ``asyncio.shield`` (a task of its own), a reset
under a timeout and an inactivity timer, on every fill (docs/measurements.md). The fill
statement needs none of that: its connections keep no session state and
are only ever used one statement or one transaction at a time. A connection that fails or is
abandoned mid-statement is closed and replaced by a new one on the next use.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import asyncpg


class SmallPool:
    """Hand out ``size`` connections one use at a time; connect lazily, replace the lost."""

    def __init__(self, connect: Callable[[], Awaitable[asyncpg.Connection]], size: int) -> None:
        self._connect = connect
        self._idle: asyncio.LifoQueue[asyncpg.Connection | None] = asyncio.LifoQueue()
        for _ in range(size):
            self._idle.put_nowait(None)  # connected on first use
        self._open: set[asyncpg.Connection] = set()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        conn = await self._idle.get()
        try:
            if conn is None or conn.is_closed():
                self._open.discard(conn)
                conn = await self._connect()
                self._open.add(conn)
            yield conn
        except asyncpg.PostgresError:
            # The server answered (a constraint, a serialization failure): still usable.
            raise
        except BaseException:
            # Lost, timed out or cancelled mid-statement: its state is unknown.
            if conn is not None:
                self._open.discard(conn)
                conn.terminate()
                conn = None
            raise
        finally:
            self._idle.put_nowait(conn)

    async def close(self) -> None:
        for conn in list(self._open):
            if not conn.is_closed():
                await conn.close(timeout=5)
        self._open.clear()
