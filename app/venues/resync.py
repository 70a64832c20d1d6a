"""The venue's positions are the truth: a leader's tracked positions checked against them.

A fill the service never saw (cut from the start of the venue's history window, lost in an
outage longer than the history) leaves the tracked position wrong, and every follower with
it, for good. Two checks catch it:

- ``before_fill``: where the venue says what the position was just before a fill
  (Hyperliquid's ``startPosition``), a tracked position that disagrees is corrected before the
  fill is applied. Exact: the venue orders its fills and so do we.
- ``compare``: every venue's positions endpoint, on an interval. A fill may be on its way (in
  the venue's answer, not yet applied here), so a difference counts only when seen on two
  checks in a row, the same on both sides, with no fill applied in that symbol between.

A correction is a leader resync (``Pipeline.resync_leader``): a ``sync`` event that moves the
leader's position to the venue's and brings every follower to its target.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import structlog

from app.db.repositories.feeds import FeedRepository
from app.domain.model import Fill
from app.pipeline import Pipeline
from app.venues.feed import VenueAdapter, VenuePosition
from app.venues.parsing import to_epoch_ms

log = structlog.get_logger(__name__)


class PositionCheck:
    def __init__(
        self,
        adapter: VenueAdapter,
        pipeline: Pipeline,
        until_done: Callable[[Callable[[], Awaitable[object]]], Awaitable[None]],
    ) -> None:
        self.leader_id: UUID = adapter.leader_id
        self._adapter = adapter
        self._pipeline = pipeline
        # Retries a call while Postgres is away (the listener's pause-on-this-fill).
        self._until_done = until_done
        # symbol -> (venue qty, tracked qty) of a difference seen once, not yet corrected.
        self._suspects: dict[str, tuple[Decimal, Decimal]] = {}
        # Symbols a fill was applied in since the last comparison.
        self._touched: set[str] = set()
        # The venue's last mark per symbol: the price of a resync to flat.
        self._marks: dict[str, Decimal] = {}

    def applied(self, fill: Fill) -> None:
        self._touched.add(fill.symbol)

    async def before_fill(self, fill: Fill, start: Decimal) -> None:
        """The venue says the position was ``start`` just before ``fill``: resync if not."""
        tracked = await self._pipeline.sizing.leader_positions(self.leader_id)
        if tracked.get(fill.symbol, Decimal(0)) == start:
            return
        async with self._pipeline.unit_of_work() as uow:
            # Recorded before (a replay after a restart): the tracked position has moved past
            # this fill's start, and is not wrong for it.
            if await FeedRepository(uow.session).has_fill(self.leader_id, fill.fill_id):
                return
        await self._pipeline.resync_leader(
            self.leader_id,
            fill.symbol,
            start,
            fill.price,
            f"resync:{fill.fill_id}",
            self._adapter.kind,
        )
        self._suspects.pop(fill.symbol, None)

    async def compare(self) -> None:
        """Read the venue's positions and correct a difference confirmed twice."""
        try:
            venue = await self._adapter.positions()
        except Exception as exc:
            log.warning(
                "venue_positions_unread",
                leader_id=str(self.leader_id),
                venue=self._adapter.kind,
                error=repr(exc)[:300],
            )
            return
        await self.save_marks(venue)
        touched, self._touched = self._touched, set()
        tracked = await self._pipeline.sizing.leader_positions(self.leader_id)
        by_symbol = {p.symbol: p for p in venue}
        missing = sorted(tracked.keys() - by_symbol.keys())
        if missing:
            try:
                by_symbol |= {p.symbol: p for p in await self._adapter.positions_of(missing)}
            except Exception as exc:
                log.warning(
                    "venue_positions_unread", leader_id=str(self.leader_id), error=repr(exc)[:300]
                )
                return
        suspects: dict[str, tuple[Decimal, Decimal]] = {}
        for name in sorted(by_symbol.keys() | tracked.keys()):
            position = by_symbol.get(name, VenuePosition(name, Decimal(0), None))
            mine = tracked.get(name, Decimal(0))
            if not position.exact or position.qty == mine:
                continue
            seen = (position.qty, mine)
            if name in touched or self._suspects.get(name) != seen:
                suspects[name] = seen
                continue
            await self._resync(position, name)
        self._suspects = suspects

    async def _resync(self, position: VenuePosition, name: str) -> None:
        price = (
            position.price
            or self._marks.get(name)
            or self._pipeline.sizing.last_price(self.leader_id, name)
        )
        if price is None:
            log.warning("leader_resync_without_price", leader_id=str(self.leader_id), symbol=name)
            return
        event_id = f"resync:{name}:{to_epoch_ms(datetime.now(UTC))}"

        async def resync() -> None:
            await self._pipeline.resync_leader(
                self.leader_id, name, position.qty, price, event_id, self._adapter.kind
            )

        await self._until_done(resync)

    async def save_marks(
        self, positions: list[VenuePosition], as_of: datetime | None = None
    ) -> None:
        """Keep the venue's marks (for copy_open_positions and for resyncs to flat)."""
        marks = {p.symbol: p.price for p in positions if p.price is not None and p.price > 0}
        self._marks.update(marks)
        if not marks:
            return
        async with self._pipeline.unit_of_work() as uow:
            await FeedRepository(uow.session).save_marks(
                self.leader_id, marks, as_of or datetime.now(UTC)
            )
            await uow.commit()
