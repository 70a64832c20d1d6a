"""Which code serves each venue kind, in both directions: one line per venue and direction.

A venue folder provides its leader feed (``feed.py``: a ``VenueAdapter`` subclass, listed in
``_FEEDS``) and its execution client (``execution.py``: a ``build(context) -> ExecutionClient``
function, listed in ``_CLIENTS``). Modules are imported on first use, so a service with no
leader or account on a venue never loads that venue's code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import Any
from uuid import UUID

from app.security.crypto import Credential
from app.venues.execution import ExecutionClient
from app.venues.feed import VenueAdapter

_FEEDS = {
    "binance-usdm": "app.venues.binance_usdm.feed:BinanceUsdmAdapter",
    "bybit": "app.venues.bybit.feed:BybitAdapter",
    "okx": "app.venues.okx.feed:OkxAdapter",
    "hyperliquid": "app.venues.hyperliquid.feed:HyperliquidAdapter",
}
VENUE_KINDS = tuple(_FEEDS)


def adapter_class(kind: str) -> type[VenueAdapter]:
    """The leader feed adapter of ``kind`` (a KeyError for an unknown kind)."""
    module, _, name = _FEEDS[kind].partition(":")
    cls: type[VenueAdapter] = getattr(import_module(module), name)
    return cls


@dataclass(frozen=True, slots=True)
class AccountContext:
    """What a client is built from: the stored config (base URLs, options), the decrypted
    credentials, and the REST timeout."""

    follower_id: UUID
    config: dict[str, Any]
    credentials: dict[str, Credential]
    timeout_s: float


ClientFactory = Callable[[AccountContext], ExecutionClient]

_CLIENTS: dict[str, str] = {
    "binance-usdm": "app.venues.binance_usdm.execution:build",
    "bybit": "app.venues.bybit.execution:build",
    "hyperliquid": "app.venues.hyperliquid.execution:build",
    "okx": "app.venues.okx.execution:build",
}
# Built in tests and by operators' plug-ins, beside the ones above.
_REGISTERED: dict[str, ClientFactory] = {}


def register(kind: str, factory: ClientFactory) -> None:
    """Add (or replace) the factory of ``kind`` at run time."""
    _REGISTERED[kind] = factory


def supported(kind: str) -> bool:
    return kind in _REGISTERED or kind in _CLIENTS


def factory(kind: str) -> ClientFactory:
    """The factory of ``kind``; raises LookupError when no client trades it yet."""
    if kind in _REGISTERED:
        return _REGISTERED[kind]
    if kind not in _CLIENTS:
        raise LookupError(f"no execution client for {kind!r} accounts yet")
    module, _, name = _CLIENTS[kind].partition(":")
    built: ClientFactory = getattr(import_module(module), name)
    return built
