"""Venue adapters, one module per exchange, all with the shape of base.VenueAdapter."""

from __future__ import annotations

from importlib import import_module

from app.ingest.venues.base import VenueAdapter

# Imported on first use: a service with no venue leaders loads none of them.
_ADAPTERS = {
    "binance-usdm": "app.ingest.venues.binance_usdm:BinanceUsdmAdapter",
    "bybit": "app.ingest.venues.bybit:BybitAdapter",
    "okx": "app.ingest.venues.okx:OkxAdapter",
    "hyperliquid": "app.ingest.venues.hyperliquid:HyperliquidAdapter",
}
VENUE_KINDS = tuple(_ADAPTERS)


def adapter_class(kind: str) -> type[VenueAdapter]:
    module, _, name = _ADAPTERS[kind].partition(":")
    cls: type[VenueAdapter] = getattr(import_module(module), name)
    return cls
