"""Hyperliquid instrument rules from ``POST /info {"type": "meta"}`` (public).

Per asset of ``universe`` (info-endpoint/perpetuals): ``szDecimals`` (sizes are multiples of
10^-szDecimals). From tick-and-lot-size: prices have at most 5 significant figures and at most
``6 - szDecimals`` decimals (app.venues.hyperliquid.rules holds the rounding); every order must
be worth at least 10 USDC. Delisted assets are left out. Perpetuals settle in USDC.
"""

from __future__ import annotations

from decimal import Decimal

import httpx
import msgspec

from app.domain.instruments import Listing
from app.venues.hyperliquid.rules import MAX_PERP_DECIMALS, SIGNIFICANT_FIGURES
from app.venues.hyperliquid.schemas import AssetMeta
from app.venues.rules_loading import InstrumentsUnavailable, Loaded, parse_rows

VENUE = "hyperliquid"
PATH = "/info"
MIN_ORDER_VALUE = Decimal(10)  # USDC, every order (error-responses: "minimum value of $10")
QUOTE = "USDC"


class MetaRows(msgspec.Struct, frozen=True):
    universe: list[msgspec.Raw]


def listing(asset: AssetMeta) -> Listing | None:
    """The Listing of one perpetual of ``meta``; None for a delisted one."""
    if asset.is_delisted:
        return None
    if not 0 <= asset.sz_decimals <= MAX_PERP_DECIMALS:
        raise ValueError(f"szDecimals: must be 0 to {MAX_PERP_DECIMALS}")
    return Listing(
        venue=VENUE,
        symbol=asset.name,
        base=asset.name,
        quote=QUOTE,
        qty_step=Decimal(1).scaleb(-asset.sz_decimals),
        min_notional=MIN_ORDER_VALUE,
        price_sig_figs=SIGNIFICANT_FIGURES,
        price_max_decimals=MAX_PERP_DECIMALS - asset.sz_decimals,
    )


def parse(body: bytes) -> Loaded:
    try:
        meta = msgspec.json.decode(body, type=MetaRows)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise InstrumentsUnavailable(f"{VENUE} meta: {exc}") from exc
    return parse_rows(VENUE, meta.universe, AssetMeta, listing)


async def load(http: httpx.AsyncClient, base_url: str) -> Loaded:
    response = await http.post(base_url.rstrip("/") + PATH, json={"type": "meta"})
    if response.status_code != 200:
        raise InstrumentsUnavailable(f"{VENUE} meta: HTTP {response.status_code}")
    return parse(response.content)
