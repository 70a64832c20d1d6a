"""Sizing a follower on its own venue: the leader's symbol mapped onto the follower's venue,
and that venue's rules for it (app.domain.instruments).

A follower's venue is its subscription's ``symbols.venue``, else the venue of the exchange
account it connected (follower_account.kind). Without either, a follower is sized as before:
the leader's symbol (or ``symbols.map``) with the rules of ``PUT /v1/instruments``.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from dataclasses import replace
from typing import Any
from uuid import UUID

import asyncpg

from app.domain.instruments import VENUES, Catalogue, Listing, map_symbol, order_rules
from app.domain.plan_model import InstrumentRules
from app.sizing.books import SubscriptionBook

LEADER_VENUE = "SELECT feed_kind FROM leader WHERE id = $1"


async def leader_venue(conn: asyncpg.Connection, leader_id: UUID) -> str | None:
    """The venue a leader trades on, when its feed is a venue's (push feeds: unknown)."""
    kind = await conn.fetchval(LEADER_VENUE, leader_id)
    return kind if kind in VENUES else None


def follower_venue(
    sizing: dict[str, Any],
    account_venue: str | None = None,
    listed_venues: Container[str] = frozenset(VENUES),
) -> tuple[str | None, str | None]:
    """(venue, preferred quote) of a subscription's stored sizing document and the kind of
    its follower's exchange account, if any.

    The venue is the subscription's ``symbols.venue`` when set, else the account's venue
    when that venue's instrument list is loaded (``listed_venues``). An account on a venue
    whose list was never loaded (``COPYTRADE_INSTRUMENT_VENUES`` leaves it out) keeps the
    operator's rules: without a list, every symbol would otherwise read as not listed.
    """
    symbols = sizing.get("symbols") or {}
    venue = symbols.get("venue")
    if venue is None and account_venue in VENUES and account_venue in listed_venues:
        venue = account_venue
    return venue, symbols.get("quote")


class VenueRules:
    """Every venue's listings, and the placement of a leader symbol for one subscription."""

    def __init__(self, listings: Iterable[Listing]) -> None:
        self.catalogue = Catalogue(listings)

    def rules(self, venue: str, symbol: str, limit_orders: bool = False) -> InstrumentRules | None:
        """The rules an order in ``symbol`` on ``venue`` is sized by (None: not listed)."""
        listing = self.catalogue.listing(venue, symbol)
        return None if listing is None else order_rules(listing, limit_orders)

    def place(
        self,
        sub: SubscriptionBook,
        leader_symbol: str,
        leader_venue: str | None,
        operator_rules: Mapping[str, InstrumentRules],
    ) -> tuple[str, InstrumentRules] | None:
        """The follower's symbol and rules for ``leader_symbol``, or None when the follower's
        venue does not list it. Remembered on the subscription's book (dropped with it when
        instruments or subscriptions change). A mapped symbol joins the subscription's
        ``symbol_map`` in memory, so the planner and the exposure marks see it as a rename.

        ``operator_rules`` (PUT /v1/instruments without a venue) serve a symbol that
        ``symbols.map`` names but the venue's list lacks.
        """
        if leader_symbol in sub.venue_placements:
            return sub.venue_placements[leader_symbol]
        assert sub.venue is not None
        settings = sub.settings
        symbol = map_symbol(
            leader_symbol,
            leader_venue,
            sub.venue,
            self.catalogue,
            settings.symbol_map,
            sub.quote,
        )
        placed: tuple[str, InstrumentRules] | None = None
        if symbol is not None:
            listing = self.catalogue.listing(sub.venue, symbol)
            if listing is not None:
                placed = symbol, order_rules(listing, settings.max_slippage is not None)
            elif symbol in operator_rules:
                placed = symbol, operator_rules[symbol]
        if (
            placed is not None
            and settings.symbol_map.get(leader_symbol, leader_symbol) != placed[0]
        ):
            renamed = {**settings.symbol_map, leader_symbol: placed[0]}
            sub.settings = replace(settings, symbol_map=renamed)
            sub.leader_symbols[placed[0]] = leader_symbol
        sub.venue_placements[leader_symbol] = placed
        return placed
