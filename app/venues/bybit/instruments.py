"""Bybit instrument rules from ``GET /v5/market/instruments-info?category=linear`` (public).

Per symbol (v5/market/instrument): ``lotSizeFilter`` (qtyStep, minOrderQty, maxOrderQty,
maxMktOrderQty, minNotionalValue) and ``priceFilter`` (tickSize). Only ``LinearPerpetual``
contracts in status ``Trading`` are kept. The list is paged: ``limit`` at most 1000, then
``cursor`` = the previous page's ``nextPageCursor`` until it comes back empty.
"""

from __future__ import annotations

from decimal import Decimal

import httpx
import msgspec

from app.domain.instruments import Listing
from app.venues.rules_loading import InstrumentsUnavailable, Loaded, parse_rows

VENUE = "bybit"
PATH = "/v5/market/instruments-info"
PAGE_LIMIT = 1000
# More linear contracts than this many pages could hold is a cursor that never ends.
MAX_PAGES = 50


class LotSizeFilter(msgspec.Struct, frozen=True, rename="camel"):
    qty_step: Decimal
    min_order_qty: Decimal
    max_order_qty: Decimal | None = None
    max_mkt_order_qty: Decimal | None = None
    min_notional_value: Decimal | None = None


class PriceFilter(msgspec.Struct, frozen=True, rename="camel"):
    tick_size: Decimal


class Instrument(msgspec.Struct, frozen=True, rename="camel"):
    symbol: str
    contract_type: str
    status: str
    base_coin: str
    quote_coin: str
    lot_size_filter: LotSizeFilter
    price_filter: PriceFilter


class Page(msgspec.Struct, frozen=True, rename="camel"):
    rows: list[msgspec.Raw] = msgspec.field(name="list", default_factory=list)
    next_page_cursor: str = ""


class Response(msgspec.Struct, frozen=True, rename="camel"):
    ret_code: int
    ret_msg: str = ""
    result: Page | None = None


def listing(row: Instrument) -> Listing | None:
    """The Listing of one linear instrument; None for what is not a trading perpetual."""
    if row.contract_type != "LinearPerpetual" or row.status != "Trading":
        return None
    lot = row.lot_size_filter
    return Listing(
        venue=VENUE,
        symbol=row.symbol,
        base=row.base_coin,
        quote=row.quote_coin,
        qty_step=lot.qty_step,
        min_qty=lot.min_order_qty,
        max_qty=lot.max_order_qty or None,
        market_max_qty=lot.max_mkt_order_qty or None,
        min_notional=lot.min_notional_value or Decimal(0),
        price_step=row.price_filter.tick_size or None,
    )


def parse_page(body: bytes, into: Loaded) -> str:
    """Add one page's listings to ``into``; return the next page's cursor ("" at the end)."""
    try:
        response = msgspec.json.decode(body, type=Response)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise InstrumentsUnavailable(f"{VENUE} instruments-info: {exc}") from exc
    if response.ret_code != 0 or response.result is None:
        raise InstrumentsUnavailable(
            f"{VENUE} instruments-info: retCode {response.ret_code} {response.ret_msg[:200]}"
        )
    parse_rows(VENUE, response.result.rows, Instrument, listing, into)
    return response.result.next_page_cursor


async def load(http: httpx.AsyncClient, base_url: str) -> Loaded:
    loaded = Loaded(VENUE)
    params: dict[str, str | int] = {"category": "linear", "limit": PAGE_LIMIT}
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        response = await http.get(base_url.rstrip("/") + PATH, params=params)
        if response.status_code != 200:
            raise InstrumentsUnavailable(f"{VENUE} instruments-info: HTTP {response.status_code}")
        cursor = parse_page(response.content, loaded)
        if not cursor:
            return loaded
        if cursor in seen:
            raise InstrumentsUnavailable(f"{VENUE} instruments-info: cursor repeats")
        seen.add(cursor)
        params["cursor"] = cursor
    raise InstrumentsUnavailable(f"{VENUE} instruments-info: more than {MAX_PAGES} pages")
