"""The venues' request time rule, for the fakes: Binance's and Bybit's docs both accept a
request stamped ``timestamp`` when ``server_time - recv_window <= timestamp < server_time +
1000``; more than a second ahead is refused, however large the window."""

from __future__ import annotations

import time

AHEAD_MS = 1000


def now_ms() -> int:
    return int(time.time() * 1000)


def in_recv_window(stamp: str | int, window: str | int) -> bool:
    """Whether a request stamped ``stamp`` (epoch ms) is within ``window`` ms, as the venues
    judge it; False for a value that is not a number."""
    if not str(stamp).isdigit() or not str(window).isdigit():
        return False
    now = now_ms()
    return now - int(window) <= int(stamp) < now + AHEAD_MS
