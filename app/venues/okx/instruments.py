"""OKX instrument rules from ``GET /api/v5/public/instruments?instType=SWAP`` (public).

Per instrument (docs-v5, "Get instruments"): ``lotSz`` and ``minSz`` in contracts, ``ctVal``
(base units per contract, in ``ctValCcy``), ``tickSz``, ``maxMktSz``/``maxLmtSz``. Only
linear swaps in state ``live`` are kept (an inverse contract's ``ctVal`` is in USD). Sizes are
stored in base units: the lot step is ``lotSz x ctVal``, and ``ctVal`` is kept as the
listing's contract size so an executor converts back (app.domain.instruments.to_venue_units).
"""

from __future__ import annotations

from decimal import Decimal

import httpx
import msgspec

from app.domain.instruments import Listing
from app.venues.rules_loading import InstrumentsUnavailable, Loaded, optional_decimal, parse_rows

VENUE = "okx"
PATH = "/api/v5/public/instruments"


class Instrument(msgspec.Struct, frozen=True, rename="camel"):
    inst_id: str
    inst_type: str
    state: str
    ct_type: str = ""
    ct_val: str = ""
    ct_val_ccy: str = ""
    settle_ccy: str = ""
    lot_sz: str = ""
    min_sz: str = ""
    tick_sz: str = ""
    max_mkt_sz: str = ""
    max_lmt_sz: str = ""


class Response(msgspec.Struct, frozen=True):
    code: str
    msg: str = ""
    data: list[msgspec.Raw] = []


def listing(row: Instrument) -> Listing | None:
    """The Listing of one SWAP instrument; None for an inverse or not-live one."""
    if row.inst_type != "SWAP" or row.ct_type != "linear" or row.state != "live":
        return None
    ct_val = optional_decimal(row.ct_val, "ctVal")
    lot = optional_decimal(row.lot_sz, "lotSz")
    if ct_val is None or lot is None:
        raise ValueError("ctVal, lotSz: required for a live swap")
    min_sz = optional_decimal(row.min_sz, "minSz") or Decimal(0)
    max_mkt = optional_decimal(row.max_mkt_sz, "maxMktSz")
    max_lmt = optional_decimal(row.max_lmt_sz, "maxLmtSz")
    return Listing(
        venue=VENUE,
        symbol=row.inst_id,
        base=row.ct_val_ccy,
        quote=row.settle_ccy,
        qty_step=lot * ct_val,
        min_qty=min_sz * ct_val,
        max_qty=max_lmt * ct_val if max_lmt else None,
        market_max_qty=max_mkt * ct_val if max_mkt else None,
        price_step=optional_decimal(row.tick_sz, "tickSz"),
        contract_size=ct_val,
    )


def parse(body: bytes) -> Loaded:
    try:
        response = msgspec.json.decode(body, type=Response)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise InstrumentsUnavailable(f"{VENUE} instruments: {exc}") from exc
    if response.code != "0":
        raise InstrumentsUnavailable(f"{VENUE} instruments: code {response.code} {response.msg}")
    return parse_rows(VENUE, response.data, Instrument, listing)


async def load(http: httpx.AsyncClient, base_url: str) -> Loaded:
    response = await http.get(base_url.rstrip("/") + PATH, params={"instType": "SWAP"})
    if response.status_code != 200:
        raise InstrumentsUnavailable(f"{VENUE} instruments: HTTP {response.status_code}")
    return parse(response.content)
