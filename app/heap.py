"""The garbage collector and the long-lived caches.

A full collection walks every tracked object. An instance's books and equity readings are
hundreds of thousands of objects that live for hours: under load, walking them again and
again holds the event loop for long pauses (docs/measurements.md). What a cache has just
loaded is moved out of the collector's sight instead (``gc.freeze``), and the youngest
generation is let grow larger, so that the orders of a fill in flight die young rather than
being promoted and walked again.
"""

from __future__ import annotations

import gc

# Allocations between young collections (CPython's default is 700). A fan-out of 10,000
# allocates a few hundred thousand tracked objects, nearly all garbage by the ack.
YOUNG_THRESHOLD = 50_000


def configure() -> None:
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


def settle() -> None:
    """Call once a long-lived cache is loaded: collect the young garbage, freeze the rest.

    Frozen objects are still freed when their last reference goes. Cycles among them are
    never collected (nothing unfreezes), so what is frozen must not hold cycles: a reload
    replaces a cache wholesale, and the caches hold plain values.
    """
    gc.collect(1)
    gc.freeze()
