"""Newest equity per account, in memory, kept fresh by LISTEN/NOTIFY with a periodic resync.

The equity_snapshot table may be written by other systems with plain SQL; a trigger notifies
every insert, so the hot path never queries equity per follower.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.repositories.equity import EquityRepository
from app.domain.model import EquityReading
from app.loops import Backoff, SupervisedTask

log = structlog.get_logger(__name__)

CHANNEL = "copytrade_equity"
CHANGES_CHANNEL = "copytrade_changes"  # subscription and instrument rows (migration 0003)
ChangeHook = Callable[[str, str], None]
AccountKey = tuple[str, UUID]  # ("L" | "F", id)
# A periodic resync also reads snapshots inserted this long before the previous one: a
# transaction's rows carry its start time but become visible when it commits.
RESYNC_MARGIN_S = 60.0
# Snapshots read per round trip of a reload: the event loop is free between two.
RELOAD_PAGE = 2000
# Follower ids whose reading changed, kept for the vector path's books
# (app.sizing.vector_books) to update their equity columns by; past this many the older
# half is dropped, and a book that had not read it rereads every reading.
CHANGES_KEPT = 200_000


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    """Turn a SQLAlchemy asyncpg URL into a plain libpq DSN for asyncpg.connect."""
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)


class EquityCache:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        dsn: str,
        resync_s: float,
        connect_args: dict[str, Any] | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._dsn = dsn
        # The LISTEN connection's timeouts (app.db.session.PgTimeouts).
        self._connect_args = connect_args or {}
        self._resync_s = resync_s
        self._readings: dict[AccountKey, EquityReading] = {}
        self._changed: list[UUID] = []
        self._changed_dropped = 0
        self._loop = SupervisedTask("equity_listen", self._listen, Backoff(0.2, 10.0))
        self.listening = False
        self._on_change: ChangeHook | None = None

    def on_change(self, hook: ChangeHook) -> None:
        """Also deliver ``copytrade_changes`` notifications (kind, id) on this connection.

        The hook gets ("resync", "") after every (re)connect: what changed meanwhile is unknown.
        """
        self._on_change = hook

    def _on_change_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if self._on_change is None:
            return
        try:
            data = json.loads(payload)
            self._on_change(str(data["kind"]), str(data["id"]))
        except (KeyError, ValueError, TypeError):
            log.warning("change_notify_malformed", payload=payload[:200])

    def leader(self, leader_id: UUID) -> EquityReading | None:
        return self._readings.get(("L", leader_id))

    def follower(self, follower_id: UUID) -> EquityReading | None:
        return self._readings.get(("F", follower_id))

    def observe(
        self, leader_id: UUID | None, follower_id: UUID | None, reading: EquityReading
    ) -> None:
        """Keep ``reading`` if it is newer (by as_of, then id) than what the cache holds."""
        key: AccountKey = ("L", leader_id) if leader_id else ("F", follower_id)  # type: ignore[assignment]
        current = self._readings.get(key)
        if current is None or (reading.as_of, reading.snapshot_id) > (
            current.as_of,
            current.snapshot_id,
        ):
            self._readings[key] = reading
            if follower_id is not None and leader_id is None:
                self._changed.append(follower_id)
                if len(self._changed) > CHANGES_KEPT:
                    half = len(self._changed) // 2
                    del self._changed[:half]
                    self._changed_dropped += half

    @property
    def changes_cursor(self) -> int:
        """The cursor ``follower_changes`` would return now."""
        return self._changed_dropped + len(self._changed)

    def follower_changes(self, cursor: int) -> tuple[int, list[UUID] | None]:
        """The followers whose reading changed since ``cursor`` (0: since the start), and
        the cursor to pass next time; None instead of the list when that is too far back."""
        end = self._changed_dropped + len(self._changed)
        if cursor < self._changed_dropped:
            return end, None
        return end, self._changed[cursor - self._changed_dropped :]

    async def reload(self, within_s: float | None = None) -> None:
        """Take the newest snapshot of every account, or of those with a snapshot inserted
        in the last ``within_s`` seconds (enough for the periodic resync: a snapshot is never
        changed once written, so an older one cannot have become the newest)."""
        async with self._sessionmaker() as session:
            async for page in EquityRepository(session).newest_pages(RELOAD_PAGE, within_s):
                # Fills go on between the pages.
                for leader_id, follower_id, reading in page:
                    self.observe(leader_id, follower_id, reading)

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            data = json.loads(payload)
            reading = EquityReading(
                snapshot_id=int(data["id"]),
                equity=Decimal(data["equity"]),
                as_of=datetime.fromisoformat(data["as_of"]),
            )
            leader = UUID(data["leader_id"]) if data.get("leader_id") else None
            follower = UUID(data["follower_id"]) if data.get("follower_id") else None
        except (KeyError, ValueError, TypeError, ArithmeticError):
            log.warning("equity_notify_malformed", payload=payload[:200])
            return
        self.observe(leader, follower, reading)

    async def start(self) -> None:
        await self.reload()
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _listen(self, backoff: Backoff) -> None:
        conn = await asyncpg.connect(self._dsn, **self._connect_args)
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _c: lost.set())
        try:
            await conn.add_listener(CHANNEL, self._on_notify)
            await conn.add_listener(CHANGES_CHANNEL, self._on_change_notify)
            if self._on_change is not None:
                self._on_change("resync", "")
            self.listening = True
            # Anything inserted while we were not listening is picked up by this reload.
            await self.reload()
            backoff.reset()
            while not lost.is_set():
                try:
                    await asyncio.wait_for(lost.wait(), timeout=self._resync_s)
                except TimeoutError:
                    # A connection lost without a word (a partition) sends no notification
                    # and no termination: one round trip, bounded by the command timeout,
                    # finds out.
                    await conn.execute("SELECT 1")
                    # Only what was inserted since the last resync, with a margin for
                    # transactions that committed late: with 42,000 accounts the full reload
                    # held the event loop for about 0.3 s every resync.
                    await self.reload(within_s=self._resync_s + RESYNC_MARGIN_S)
            raise ConnectionError("equity LISTEN connection lost")
        finally:
            self.listening = False
            if not conn.is_closed():
                await conn.close(timeout=2)
