"""Each venue's instrument rules, loaded from its public endpoint into ``venue_instrument``:
at start-up, every ``instrument_refresh_s`` after, and soon after the execution side says a
venue refused an order for its precision or minimums (``request_refresh``).

A load is one unit of work: the rows that changed are written and committed together, and the
change trigger tells every instance's sizing to reload. A venue that cannot be reached keeps
the rules it had; its loop retries with backoff.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from importlib import import_module

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.repositories.instruments import VenueInstrumentRepository
from app.domain.instruments import VENUES
from app.loops import Backoff, SupervisedTask
from app.metrics import INSTRUMENT_LOADS
from app.venues.rules_loading import Loaded

log = structlog.get_logger(__name__)

# venue -> the module whose ``load(http, base_url)`` reads its public list.
LOADERS = {
    "binance-usdm": "app.venues.binance_usdm.instruments",
    "bybit": "app.venues.bybit.instruments",
    "okx": "app.venues.okx.instruments",
    "hyperliquid": "app.venues.hyperliquid.instruments",
}
DEFAULT_URLS = {
    "binance-usdm": "https://fapi.binance.com",
    "bybit": "https://api.bybit.com",
    "okx": "https://www.okx.com",
    "hyperliquid": "https://api.hyperliquid.xyz",
}
assert set(LOADERS) == set(VENUES) == set(DEFAULT_URLS)


async def fetch(venue: str, http: httpx.AsyncClient, base_url: str) -> Loaded:
    """Read one venue's public instrument list (no database)."""
    load: Callable[[httpx.AsyncClient, str], Awaitable[Loaded]] = import_module(LOADERS[venue]).load
    return await load(http, base_url)


class InstrumentRefresher:
    """One supervised loop per configured venue, each woken by its interval or a request."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        venues: Sequence[str],
        urls: Mapping[str, str],
        interval_s: float,
        min_interval_s: float,
        timeout_s: float,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._venues = tuple(venues)
        self._urls = {**DEFAULT_URLS, **urls}
        self._interval_s = interval_s
        self._min_interval_s = min_interval_s
        self._timeout_s = timeout_s
        self._wake = {venue: asyncio.Event() for venue in self._venues}
        self._loaded_at: dict[str, float] = {}
        self._tasks = {
            venue: SupervisedTask(f"instruments:{venue}", self._loop(venue), Backoff(1.0, 300.0))
            for venue in self._venues
        }
        # Reloads asked for in a process that does not run the venue's loop (an executor's).
        self._once: dict[str, asyncio.Task[None]] = {}

    @property
    def venues(self) -> tuple[str, ...]:
        return self._venues

    def start(self) -> None:
        for task in self._tasks.values():
            task.start()

    async def stop(self) -> None:
        for task in self._tasks.values():
            await task.stop()
        for once in self._once.values():
            once.cancel()
        await asyncio.gather(*self._once.values(), return_exceptions=True)

    def request_refresh(self, venue: str) -> None:
        """Reload ``venue``'s rules soon: the hook for an order refused for its precision or
        minimums. Loads come at most once per ``instrument_min_refresh_s`` per venue, so a
        burst of refusals costs one load. Works in any process: where the venue's loop does
        not run, one load is made in the background."""
        loop_task = self._tasks.get(venue)
        if loop_task is not None and loop_task.alive:
            self._wake[venue].set()
            return
        once = self._once.get(venue)
        if venue not in DEFAULT_URLS or (once is not None and not once.done()):
            return
        since = time.monotonic() - self._loaded_at.get(venue, -self._min_interval_s)
        self._once[venue] = asyncio.create_task(
            self._refresh_once(venue, max(0.0, self._min_interval_s - since)),
            name=f"instruments-once:{venue}",
        )

    async def _refresh_once(self, venue: str, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        try:
            await self.refresh(venue)
        except Exception as exc:
            log.warning("instruments_load_failed", venue=venue, error=repr(exc))

    async def refresh(self, venue: str) -> Loaded:
        """Load ``venue``'s rules now and store them (one commit); returns what was loaded."""
        async with httpx.AsyncClient(timeout=self._timeout_s) as http:
            try:
                loaded = await fetch(venue, http, self._urls[venue])
            except Exception:
                INSTRUMENT_LOADS.labels(venue=venue, outcome="error").inc()
                raise
        async with self._sessionmaker() as session, session.begin():
            written, removed = await VenueInstrumentRepository(session).sync_venue(
                venue, loaded.listings, complete=loaded.skipped == 0
            )
        self._loaded_at[venue] = time.monotonic()
        INSTRUMENT_LOADS.labels(venue=venue, outcome="ok").inc()
        log.info(
            "instruments_loaded",
            venue=venue,
            listed=len(loaded.listings),
            skipped=loaded.skipped,
            written=written,
            removed=removed,
        )
        return loaded

    def _loop(self, venue: str) -> Callable[[Backoff], Awaitable[None]]:
        wake = self._wake[venue]

        async def body(backoff: Backoff) -> None:
            while True:
                wake.clear()
                await self.refresh(venue)
                backoff.reset()
                try:
                    await asyncio.wait_for(wake.wait(), self._interval_s)
                except TimeoutError:
                    continue
                # Asked for: not before the minimum interval since the last load.
                since = time.monotonic() - self._loaded_at.get(venue, 0.0)
                if since < self._min_interval_s:
                    await asyncio.sleep(self._min_interval_s - since)

        return body
