"""The garbage collector and the long-lived caches.

A full collection walks every tracked object. An instance's books and equity readings are
hundreds of thousands of objects that live for hours: under load, walking them again and
again holds the event loop for long pauses (docs/measurements.md). What start-up has loaded
is moved out of the collector's sight once (``gc.freeze``), and the youngest generation is let
grow larger, so that the orders of a fill in flight die young rather than being promoted and
walked again.
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
    """Call once, when start-up has loaded what lives for the process's lifetime (settings,
    the equity cache): collect the young garbage, freeze the rest.

    Not on every cache reload: frozen objects are never collected as cycles, and nothing
    here thaws them, so each freeze would keep whatever garbage cycle was alive at that
    moment for the process's lifetime, and the collection before it would run on the fill path.
    """
    gc.collect(1)
    gc.freeze()
