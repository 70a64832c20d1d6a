"""Venue instrument rules: written by the loaders and operators, read by sizing and the API."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy import and_, delete, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import Leader, LeaderPosition, VenueInstrument
from app.domain.instruments import Listing

RULE_COLUMNS = (
    "base",
    "quote",
    "qty_step",
    "min_qty",
    "max_qty",
    "market_qty_step",
    "market_min_qty",
    "market_max_qty",
    "min_notional",
    "price_step",
    "price_sig_figs",
    "price_max_decimals",
    "contract_size",
)
_BATCH = 1000  # rows per statement: 14 parameters each, well under asyncpg's 32767


def listing_of(row: Any) -> Listing:
    """A Listing from a venue_instrument row (ORM object or asyncpg record)."""
    names = ("venue", "symbol", "source", *RULE_COLUMNS)
    if isinstance(row, asyncpg.Record):
        return Listing(**{name: row[name] for name in names})
    return Listing(**{name: getattr(row, name) for name in names})


class VenueInstrumentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def sync_venue(
        self, venue: str, listings: Sequence[Listing], complete: bool
    ) -> tuple[int, int]:
        """Store a venue's listings as loaded: rows whose rules changed are rewritten (and
        only those: each write tells every instance to reload), operator rows are left
        alone. When the load was ``complete`` (no row refused), what the venue no longer
        lists is removed. Returns (rows written, rows removed)."""
        written = 0
        for start in range(0, len(listings), _BATCH):
            values = [
                {k: v for k, v in asdict(item).items() if k != "source"}
                for item in listings[start : start + _BATCH]
                if item.venue == venue
            ]
            if not values:
                continue
            stmt = pg_insert(VenueInstrument).values(values)
            columns = [getattr(VenueInstrument, name) for name in RULE_COLUMNS]
            fresh = [stmt.excluded[name] for name in RULE_COLUMNS]
            upsert = stmt.on_conflict_do_update(
                index_elements=["venue", "symbol"],
                set_={**{name: stmt.excluded[name] for name in RULE_COLUMNS},
                      "updated_at": func.now()},
                where=and_(
                    VenueInstrument.source == "venue",
                    tuple_(*columns).is_distinct_from(tuple_(*fresh)),
                ),
            ).returning(VenueInstrument.symbol)  # fmt: skip
            written += len((await self.session.execute(upsert)).all())
        removed = 0
        if complete:
            symbols = [item.symbol for item in listings if item.venue == venue]
            result = await self.session.execute(
                delete(VenueInstrument)
                .where(
                    VenueInstrument.venue == venue,
                    VenueInstrument.source == "venue",
                    VenueInstrument.symbol.not_in(symbols),
                )
                .returning(VenueInstrument.symbol)
            )
            removed = len(result.all())
        return written, removed

    async def get(self, venue: str, symbol: str) -> VenueInstrument | None:
        return await self.session.get(VenueInstrument, (venue, symbol))

    async def put_operator(self, listing: Listing) -> VenueInstrument:
        """An operator's rules for one symbol of a venue: kept over the venue's own."""
        values = {name: getattr(listing, name) for name in RULE_COLUMNS}
        stmt = (
            pg_insert(VenueInstrument)
            .values(venue=listing.venue, symbol=listing.symbol, source="operator", **values)
            .on_conflict_do_update(
                index_elements=["venue", "symbol"],
                set_={**values, "source": "operator", "updated_at": func.now()},
            )
            .returning(VenueInstrument)
            # The row may be in the session already (read before): take the new values.
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(stmt)).scalar_one()

    async def drop_operator(self, venue: str, symbol: str) -> bool:
        """Remove an operator's rules: the venue's own return at its next load."""
        result = await self.session.execute(
            delete(VenueInstrument)
            .where(
                VenueInstrument.venue == venue,
                VenueInstrument.symbol == symbol,
                VenueInstrument.source == "operator",
            )
            .returning(VenueInstrument.symbol)
        )
        return bool(result.all())

    async def list_venue(self, venue: str) -> list[VenueInstrument]:
        stmt = (
            select(VenueInstrument)
            .where(VenueInstrument.venue == venue)
            .order_by(VenueInstrument.symbol)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def listed(self, venues: Sequence[str]) -> list[Listing]:
        stmt = select(VenueInstrument).where(VenueInstrument.venue.in_(venues))
        return [listing_of(row) for row in (await self.session.execute(stmt)).scalars()]


class SymbolsSeenRepository:
    """What the subscription view maps: each leader's venue and the symbols it has traded."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def for_leaders(self, leader_ids: Sequence[UUID]) -> dict[UUID, tuple[str, list[str]]]:
        """leader id -> (its feed kind, the symbols of its positions, flat ones included)."""
        kinds = await self.session.execute(
            select(Leader.id, Leader.feed_kind).where(Leader.id.in_(leader_ids))
        )
        seen: dict[UUID, tuple[str, list[str]]] = {lid: (kind, []) for lid, kind in kinds.all()}
        rows = await self.session.execute(
            select(LeaderPosition.leader_id, LeaderPosition.symbol)
            .where(LeaderPosition.leader_id.in_(leader_ids))
            .order_by(LeaderPosition.symbol)
        )
        for leader_id, symbol in rows.all():
            seen[leader_id][1].append(symbol)
        return seen


LOAD_VENUE_INSTRUMENTS = "SELECT * FROM venue_instrument"


async def load_listings(conn: asyncpg.Connection) -> list[Listing]:
    """Every venue's listings, for sizing's in-memory catalogue (a few thousand rows)."""
    return [listing_of(row) for row in await conn.fetch(LOAD_VENUE_INSTRUMENTS)]
