"""Binance USD-M instrument rules from ``GET /fapi/v1/exchangeInfo`` (public, weight 1).

Per symbol (derivatives/usds-margined-futures/market-data/rest-api/Exchange-Information):
``LOT_SIZE`` (stepSize, minQty, maxQty) for limit orders, ``MARKET_LOT_SIZE`` (its own
stepSize, minQty, maxQty) for market orders, ``MIN_NOTIONAL`` (notional) and ``PRICE_FILTER``
(tickSize). Only ``PERPETUAL`` contracts in status ``TRADING`` are kept.
"""

from __future__ import annotations

from decimal import Decimal

import httpx
import msgspec

from app.domain.instruments import Listing
from app.venues.rules_loading import InstrumentsUnavailable, Loaded, parse_rows

VENUE = "binance-usdm"
PATH = "/fapi/v1/exchangeInfo"


class Filter(msgspec.Struct, frozen=True, rename="camel"):
    filter_type: str
    step_size: Decimal | None = None
    min_qty: Decimal | None = None
    max_qty: Decimal | None = None
    tick_size: Decimal | None = None
    notional: Decimal | None = None


class Symbol(msgspec.Struct, frozen=True, rename="camel"):
    symbol: str
    contract_type: str
    status: str
    base_asset: str
    quote_asset: str
    filters: list[Filter]


class ExchangeInfo(msgspec.Struct, frozen=True):
    symbols: list[msgspec.Raw]


def listing(row: Symbol) -> Listing | None:
    """The Listing of one exchangeInfo symbol; None for what is not a trading perpetual."""
    if row.contract_type != "PERPETUAL" or row.status != "TRADING":
        return None
    filters = {f.filter_type: f for f in row.filters}
    lot = filters.get("LOT_SIZE")
    if lot is None or lot.step_size is None:
        raise ValueError("LOT_SIZE: missing")
    market = filters.get("MARKET_LOT_SIZE")
    notional = filters.get("MIN_NOTIONAL")
    price = filters.get("PRICE_FILTER")
    return Listing(
        venue=VENUE,
        symbol=row.symbol,
        base=row.base_asset,
        quote=row.quote_asset,
        qty_step=lot.step_size,
        min_qty=lot.min_qty or Decimal(0),
        max_qty=lot.max_qty or None,
        # A zero means "no separate rule" (the spot API's convention, kept defensively).
        market_qty_step=(market.step_size or None) if market else None,
        market_min_qty=market.min_qty if market else None,
        market_max_qty=(market.max_qty or None) if market else None,
        min_notional=(notional.notional or Decimal(0)) if notional else Decimal(0),
        price_step=(price.tick_size or None) if price else None,
    )


def parse(body: bytes) -> Loaded:
    try:
        info = msgspec.json.decode(body, type=ExchangeInfo)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise InstrumentsUnavailable(f"{VENUE} exchangeInfo: {exc}") from exc
    return parse_rows(VENUE, info.symbols, Symbol, listing)


async def load(http: httpx.AsyncClient, base_url: str) -> Loaded:
    response = await http.get(base_url.rstrip("/") + PATH)
    if response.status_code != 200:
        raise InstrumentsUnavailable(f"{VENUE} exchangeInfo: HTTP {response.status_code}")
    return parse(response.content)
