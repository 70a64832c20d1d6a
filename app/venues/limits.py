"""Client-side rate limits shared by every account on one venue host (per-IP limits).

aiolimiter's leaky bucket, one per (event loop, key): a limiter waits on its loop's futures,
so each loop (each test, each process) gets its own.
"""

from __future__ import annotations

import asyncio
import weakref

from aiolimiter import AsyncLimiter

_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, AsyncLimiter]] = (
    weakref.WeakKeyDictionary()
)


def shared_limiter(key: str, max_rate: float, period_s: float) -> AsyncLimiter:
    """The limiter of ``key`` (e.g. ``"binance-usdm:fapi.binance.com:weight"``) in this loop."""
    limiters = _SHARED.setdefault(asyncio.get_running_loop(), {})
    limiter = limiters.get(key)
    if limiter is None:
        limiter = limiters[key] = AsyncLimiter(max_rate, period_s)
    return limiter
