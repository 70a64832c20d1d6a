"""The sizing engine's cache of leader books, and the instrument rules that place followers.

A leader's book (app.sizing.books) is loaded on its first use, reloaded when marked stale
(a failed write, a book that moved elsewhere, a changed subscription or instrument) and
dropped when unused for ``book_idle_s``. ``SizingEngine`` (app.sizing.engine) plans fills
from these books under each book's lock.
"""

from __future__ import annotations

import time
from decimal import Decimal
from uuid import UUID

import asyncpg
import structlog

from app.db.repositories import fills
from app.db.repositories.instruments import load_listings
from app.domain.model import Fill
from app.domain.plan_model import InstrumentRules
from app.metrics import BOOKS_EVICTED
from app.sizing.books import (
    LeaderBook,
    SubscriptionBook,
    default_rules,
    rules_from_row,
    settings_from_row,
)
from app.sizing.venue_rules import VenueRules, follower_venue, leader_venue

log = structlog.get_logger(__name__)


class LeaderBooks:
    """Leader books by leader id, loaded from ``pool`` and kept while used."""

    def __init__(self, pool: asyncpg.Pool, book_idle_s: float) -> None:
        # A book unused this long is dropped (the next fill reads it again): leaders that
        # stopped trading must not hold their followers' books for the process's lifetime.
        self.book_idle_s = book_idle_s
        self._used: dict[UUID, float] = {}
        self._swept = time.monotonic()
        self._pool = pool  # loading books
        self._books: dict[UUID, LeaderBook] = {}
        self._rules: dict[str, InstrumentRules] | None = None
        self._venue_rules = VenueRules(())

    # -- cache control -------------------------------------------------------------------

    def invalidate(self, leader_id: UUID) -> None:
        book = self._books.get(leader_id)
        if book is not None:
            book.stale = True

    def invalidate_instruments(self) -> None:
        # Books remember each subscription's placements on its venue: rebuild them too.
        self.invalidate_all()

    def invalidate_all(self) -> None:
        for book in self._books.values():
            book.stale = True
        self._rules = None

    async def _load(self, leader_id: UUID, into: LeaderBook | None) -> LeaderBook:
        async with self._pool.acquire() as conn:
            rows = await fills.load_book(conn, leader_id)
            venue = await leader_venue(conn, leader_id)
            if self._rules is None:
                self._rules = {
                    row["symbol"]: rules_from_row(row) for row in await fills.load_instruments(conn)
                }
                self._venue_rules = VenueRules(await load_listings(conn))
        books = {
            row["id"]: SubscriptionBook(
                row["id"],
                row["follower_id"],
                settings_from_row(row["multiplier"], row["status"], row["sizing"]),
            )
            for row in rows.subscriptions
        }
        for row in rows.subscriptions:
            books[row["id"]].venue, books[row["id"]].quote = follower_venue(
                row["sizing"], row["account_venue"], self._venue_rules.catalogue.venues
            )
        for row in rows.subscription_positions:
            if row["subscription_id"] in books:
                # A position may come in two rows (fills.BookRows): their sum.
                held, symbol = books[row["subscription_id"]].positions, row["symbol"]
                held[symbol] = held[symbol] + row["qty"] if symbol in held else row["qty"]
        positions = {row["symbol"]: row["qty"] for row in rows.leader_positions}
        prices = {row["symbol"]: row["price"] for row in rows.last_prices}
        if into is None:
            return LeaderBook(
                leader_id, list(books.values()), positions, prices, rows.seq, venue=venue
            )
        into.subscriptions = list(books.values())
        into.columns = {}
        into.covered = None
        into.positions = positions
        into.last_price = prices
        into.seq = rows.seq
        into.venue = venue
        into.stale = False
        return into

    @property
    def books_cached(self) -> int:
        return len(self._books)

    def evict_idle(self, now: float) -> int:
        """Drop the books unused for ``book_idle_s`` and not in use now; return how many."""
        self._swept = now
        idle = [
            leader_id
            for leader_id, used in self._used.items()
            if now - used >= self.book_idle_s and not self._books[leader_id].lock.locked()
        ]
        for leader_id in idle:
            del self._books[leader_id], self._used[leader_id]
        if idle:
            BOOKS_EVICTED.inc(len(idle))
            log.info("books_evicted", count=len(idle), kept=len(self._books))
        return len(idle)

    def _moved(self, book: LeaderBook, fill: Fill) -> None:
        """The book moved elsewhere since it was loaded: reload it before planning again."""
        book.stale = True
        log.info("book_moved", leader_id=str(book.leader_id), fill_id=fill.fill_id)

    async def _book(self, leader_id: UUID) -> LeaderBook:
        now = time.monotonic()
        if now - self._swept >= self.book_idle_s / 4:
            self.evict_idle(now)
        self._used[leader_id] = now
        book = self._books.get(leader_id)
        if book is None:
            loaded = await self._load(leader_id, None)
            # Two first fills may load at once: both must end up with the same book (and lock).
            book = self._books.setdefault(leader_id, loaded)
            self._used[leader_id] = time.monotonic()
        return book

    def _placement(
        self, book: LeaderBook, sub: SubscriptionBook, leader_symbol: str
    ) -> tuple[str, InstrumentRules] | None:
        """The follower's symbol and rules for ``leader_symbol``; None when the follower's
        venue does not list it. A follower on a known venue is placed there
        (app.sizing.venue_rules); any other trades the leader's symbol or its rename."""
        if sub.venue is None:
            symbol = sub.settings.symbol_map.get(leader_symbol, leader_symbol)
            return symbol, self._instrument(symbol)
        assert self._rules is not None
        return self._venue_rules.place(sub, leader_symbol, book.venue, self._rules)

    def _instrument(self, symbol: str) -> InstrumentRules:
        assert self._rules is not None
        rules = self._rules.get(symbol)
        if rules is None:
            rules = self._rules[symbol] = default_rules(symbol)
        return rules

    def last_price(self, leader_id: UUID, symbol: str) -> Decimal | None:
        """The leader's last fill price in ``symbol``, if its book is loaded."""
        book = self._books.get(leader_id)
        return book.last_price.get(symbol) if book is not None else None

    async def _fresh(self, book: LeaderBook) -> None:
        """Reload ``book`` if it is stale (or the instrument rules were dropped)."""
        if book.stale or self._rules is None:
            await self._load(book.leader_id, book)
