"""The swaps OKX lists, read once per REST host and shared by every account's client.

A thousand followers on OKX need one public instruments list, not a thousand: the list is
limited to 20 requests per 2 s per IP. It is kept per event loop (an asyncio lock belongs to
one) and per base URL (a testnet lists other contracts than production).
"""

from __future__ import annotations

import asyncio
import math
import time
import weakref
from collections.abc import Awaitable, Callable

import structlog

from app.venues.okx.contracts import Contract
from app.venues.okx.schemas import Instrument

log = structlog.get_logger(__name__)


class Instruments:
    def __init__(self) -> None:
        self.contracts: dict[str, Contract] = {}
        self.loaded_at = -math.inf
        self._lock = asyncio.Lock()

    async def refresh(
        self, fetch: Callable[[], Awaitable[list[Instrument]]], older_than_s: float
    ) -> None:
        """Load the list again unless it is younger than ``older_than_s`` (then another
        client has just loaded it, or an unknown instrument is asked for again)."""
        async with self._lock:
            if time.monotonic() - self.loaded_at < older_than_s:
                return
            for row in await fetch():
                try:
                    self.contracts[row.instId] = Contract.of(row)
                except ValueError as exc:  # listed without values yet: not tradable
                    log.warning("okx_instrument_skipped", inst_id=row.instId, error=str(exc))
            self.loaded_at = time.monotonic()


_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Instruments]] = (
    weakref.WeakKeyDictionary()
)


def shared(rest_url: str) -> Instruments:
    """The instruments of ``rest_url`` in the running event loop."""
    per_host = _SHARED.setdefault(asyncio.get_running_loop(), {})
    if rest_url not in per_host:
        per_host[rest_url] = Instruments()
    return per_host[rest_url]
