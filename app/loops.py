"""The one shape of every long-running loop: supervised, backed off with jitter, cancellable."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

import structlog

from app.metrics import LOOP_ERRORS

log = structlog.get_logger(__name__)


class Backoff:
    """Exponential backoff with full jitter (AWS architecture blog), reset after a success:
    each delay is drawn uniformly from [0, min(maximum, initial * factor ** attempt)], so
    clients that failed together spread their retries over the whole window."""

    def __init__(self, initial: float, maximum: float, factor: float = 2.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.attempt = 0

    def next_delay(self) -> float:
        ceiling = min(self.maximum, self.initial * self.factor**self.attempt)
        self.attempt += 1
        return random.uniform(0.0, ceiling)

    def reset(self) -> None:
        self.attempt = 0


async def supervise(
    name: str,
    body: Callable[[Backoff], Awaitable[None]],
    backoff: Backoff,
    stop: asyncio.Event | None = None,
) -> None:
    """Run ``body`` until cancelled or ``stop`` is set, restarting it after failures.

    ``body`` gets the backoff so it can ``reset()`` it once it has made progress (a connection
    established, a batch handled). Cancellation always propagates; any other error is logged,
    counted and followed by a jittered delay.
    """
    while stop is None or not stop.is_set():
        try:
            await body(backoff)
            if stop is None or not stop.is_set():
                # A body that returns on its own is restarted, but never in a hot loop.
                await asyncio.sleep(backoff.next_delay())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            LOOP_ERRORS.labels(loop=name).inc()
            delay = backoff.next_delay()
            log.warning("loop_error", loop=name, error=repr(exc), retry_in_s=round(delay, 3))
            await asyncio.sleep(delay)


class SupervisedTask:
    """A supervised loop as a background task: what every long-running component holds."""

    def __init__(self, name: str, body: Callable[[Backoff], Awaitable[None]], backoff: Backoff):
        self.name = name
        self._body = body
        self._backoff = backoff
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.create_task(
            supervise(self.name, self._body, self._backoff, self._stop), name=self.name
        )

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        """Cancel the loop and wait until its cleanup (``finally`` blocks) has run.

        A client library may turn a cancellation that races its own timeout into an ordinary
        error (seen with a blocking Redis read): the loop would then retry and never end. So
        the stop flag ends the loop at its next turn, and the cancellation is repeated until
        the task is done.
        """
        if self._task:
            self._stop.set()
            while not self._task.done():
                self._task.cancel()
                await asyncio.wait({self._task}, timeout=1.0)
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
