"""Instruments: lot rules per symbol, and per venue and symbol. Admin only.

Without ``venue``, rules apply to every follower whose venue is not known (operator rules, as
always). With ``venue``, they are that venue's rules: loaded from its public list, or set here
by an operator, which the next load leaves alone until the operator's rules are deleted.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status

from app.api.auth import AdminDep
from app.api.decimal_json import DecimalRoute
from app.api.deps import RuntimeDep, UowDep
from app.api.responses import errors
from app.api.schemas import InstrumentIn, InstrumentOut, VenueInstrumentOut, VenueName
from app.db.repositories.instruments import VenueInstrumentRepository, listing_of
from app.db.repositories.trading import InstrumentRepository
from app.db.tables import VenueInstrument
from app.domain.instruments import Listing
from app.ingest.frames import SYMBOL_PATTERN

router = APIRouter(prefix="/v1/instruments", tags=["instruments"], route_class=DecimalRoute)

SymbolPath = Annotated[str, Path(pattern=SYMBOL_PATTERN)]
VenueQuery = Annotated[
    VenueName | None, Query(description="A venue's rules instead of the operator's defaults.")
]


def venue_out(row: VenueInstrument) -> VenueInstrumentOut:
    listing = listing_of(row)
    return VenueInstrumentOut(
        symbol=listing.symbol,
        venue=listing.venue,
        source="venue" if listing.source == "venue" else "operator",
        base=listing.base,
        quote=listing.quote,
        qty_step=listing.qty_step,
        min_qty=listing.min_qty,
        max_qty=listing.max_qty,
        market_qty_step=listing.market_qty_step,
        market_min_qty=listing.market_min_qty,
        market_max_qty=listing.market_max_qty,
        min_notional=listing.min_notional,
        price_step=listing.price_step,
        price_sig_figs=listing.price_sig_figs,
        price_max_decimals=listing.price_max_decimals,
        contract_size=listing.contract_size,
    )


@router.get("", responses=errors(401, 403))
async def list_instruments(
    _: AdminDep, uow: UowDep, venue: VenueQuery = None
) -> list[VenueInstrumentOut] | list[InstrumentOut]:
    """Every symbol's rules: a venue's (with the source of each), or the operator's defaults."""
    if venue is not None:
        rows = await VenueInstrumentRepository(uow.session).list_venue(venue)
        return [venue_out(row) for row in rows]
    return [
        InstrumentOut(
            symbol=row.symbol,
            qty_step=row.qty_step,
            min_qty=row.min_qty,
            min_notional=row.min_notional,
            price_step=row.price_step,
        )
        for row in await InstrumentRepository(uow.session).list()
    ]


@router.put("/{symbol}", responses=errors(401, 403, 422))
async def put_instrument(
    symbol: SymbolPath,
    body: InstrumentIn,
    _: AdminDep,
    uow: UowDep,
    venue: VenueQuery = None,
) -> InstrumentOut | VenueInstrumentOut:
    """Set a symbol's rules (sizes in base units). With ``venue``, they override the venue's."""
    if venue is not None:
        return await _put_venue(uow, venue, symbol, body)
    row = await InstrumentRepository(uow.session).upsert(
        symbol, body.qty_step, body.min_qty, body.min_notional, body.price_step
    )
    return InstrumentOut(
        symbol=row.symbol,
        qty_step=row.qty_step,
        min_qty=row.min_qty,
        min_notional=row.min_notional,
        price_step=row.price_step,
    )


async def _put_venue(
    uow: UowDep, venue: str, symbol: str, body: InstrumentIn
) -> VenueInstrumentOut:
    repo = VenueInstrumentRepository(uow.session)
    listed = await repo.get(venue, symbol)
    base = body.base or (listed.base if listed else None)
    quote = body.quote or (listed.quote if listed else None)
    if base is None or quote is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail="base, quote: required for a symbol the venue does not list",
        )
    row = await repo.put_operator(
        Listing(
            venue=venue,
            symbol=symbol,
            base=base,
            quote=quote,
            qty_step=body.qty_step,
            min_qty=body.min_qty,
            min_notional=body.min_notional,
            price_step=body.price_step,
            contract_size=listed.contract_size if listed else Decimal(1),
            source="operator",
        )
    )
    return venue_out(row)


@router.delete("/{symbol}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(401, 403, 404))
async def delete_venue_instrument(
    symbol: SymbolPath,
    venue: Annotated[VenueName, Query()],
    _: AdminDep,
    uow: UowDep,
    runtime: RuntimeDep,
) -> None:
    """Drop an operator's rules for a venue's symbol: the venue's return with its next load,
    asked for at once where this process loads that venue."""
    if not await VenueInstrumentRepository(uow.session).drop_operator(venue, symbol):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no operator rules for symbol")

    async def _reload() -> None:
        runtime.instruments.request_refresh(venue)

    uow.after_commit(_reload)
