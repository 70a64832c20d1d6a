"""Instruments: lot rules per symbol, admin only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from app.api.auth import AdminDep
from app.api.decimal_json import DecimalRoute
from app.api.deps import UowDep
from app.api.responses import errors
from app.api.schemas import InstrumentIn, InstrumentOut
from app.db.repositories.trading import InstrumentRepository
from app.ingest.frames import SYMBOL_PATTERN

router = APIRouter(prefix="/v1/instruments", tags=["instruments"], route_class=DecimalRoute)


@router.put("/{symbol}", responses=errors(401, 403))
async def put_instrument(
    symbol: Annotated[str, Path(pattern=SYMBOL_PATTERN)],
    body: InstrumentIn,
    _: AdminDep,
    uow: UowDep,
) -> InstrumentOut:
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
