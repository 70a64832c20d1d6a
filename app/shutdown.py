"""Graceful shutdown: on SIGTERM stop taking fills, finish the ones in flight, then exit.

uvicorn's own shutdown closes every websocket at once (1012), so a push frame being processed
would be committed but never acknowledged: the leader would resend it and get "duplicate".
Correct, but not clean. So the first SIGTERM (or SIGINT) goes through ``Drain`` first:

1. ``draining`` is set: /readyz answers 503, push sockets take no new frame, new push sockets
   are closed with 1012 (service restart: reconnect elsewhere or later);
2. every push session finishes the frame in flight, sends its ack and closes with 1012;
3. once no session is left, or the grace period is over (then the stragglers are cancelled:
   nothing was acknowledged, so the leader resends), uvicorn's handler gets the signal and does
   the rest: stops listening, closes the other sockets, waits for requests in flight (bounded by
   the same grace) and runs the lifespan shutdown (``Runtime.stop``: listeners, relay, marks).

A second signal while draining goes straight to uvicorn (a second Ctrl-C forces the exit). The
process exits 0 after a drained shutdown, whether the signal was SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import structlog

log = structlog.get_logger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)
Handler = Callable[[int, FrameType | None], Any]


class Drain:
    def __init__(self, grace_s: float) -> None:
        self.grace_s = grace_s
        self._event = asyncio.Event()
        self._sessions: dict[asyncio.Task[Any], str] = {}
        self._idle = asyncio.Event()
        self._previous: dict[int, Handler] = {}
        self._ours: dict[int, Handler] = {}
        self._task: asyncio.Task[None] | None = None

    def draining(self) -> bool:
        """Whether shutdown has begun (a method: the answer changes under the caller's feet)."""
        return self._event.is_set()

    async def wait(self) -> None:
        """Return once draining has begun."""
        await self._event.wait()

    @contextmanager
    def session(self, source: str) -> Iterator[None]:
        """Count the calling task as a fill intake (``source``: its leader) that drain awaits."""
        task = asyncio.current_task()
        assert task is not None
        self._sessions[task] = source
        try:
            yield
        finally:
            self._sessions.pop(task, None)
            if not self._sessions:
                self._idle.set()

    def sessions(self) -> Counter[str]:
        """Open intake sessions per source (push sockets per leader)."""
        return Counter(self._sessions.values())

    def begin(self) -> None:
        """Stop taking fills (idempotent)."""
        if not self.draining():
            log.info("shutdown_draining", push_sessions=len(self._sessions), grace_s=self.grace_s)
        self._event.set()

    async def drain(self) -> None:
        """Begin, then wait for every session to end, cancelling what is left after the grace."""
        self.begin()
        if self._sessions:
            self._idle.clear()
            try:
                await asyncio.wait_for(self._idle.wait(), timeout=self.grace_s)
            except TimeoutError:
                left = list(self._sessions)
                log.warning("shutdown_grace_exceeded", cancelled_sessions=len(left))
                for task in left:
                    task.cancel()
                await asyncio.gather(*left, return_exceptions=True)
        log.info("shutdown_drained")

    def install_signal_handlers(self) -> None:
        """Put the drain in front of the current SIGTERM/SIGINT handlers (uvicorn's).

        Only in the main thread (where Python runs signal handlers) and only over a Python
        handler to hand over to: anywhere else the server's own shutdown applies unchanged.
        """
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for sig in SIGNALS:
            previous = signal.getsignal(sig)
            if not callable(previous):
                continue

            def handler(signum: int, frame: FrameType | None, previous: Handler = previous) -> None:
                if self._task is not None:
                    previous(signum, frame)  # a second signal: no more waiting
                    return
                loop.call_soon_threadsafe(self._start, signum, previous)

            self._previous[sig] = previous
            self._ours[sig] = handler
            signal.signal(sig, handler)

    def restore_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig, previous in self._previous.items():
            if signal.getsignal(sig) is self._ours[sig]:
                signal.signal(sig, previous)
        self._previous.clear()
        self._ours.clear()

    def _start(self, signum: int, previous: Handler) -> None:
        if self._task is None:
            log.info("shutdown_signal", signal=signal.Signals(signum).name)
            self._task = asyncio.create_task(self._drain_then(signum, previous), name="drain")

    async def _drain_then(self, signum: int, previous: Handler) -> None:
        try:
            await self.drain()
        finally:
            # uvicorn: stop listening, close sockets, wait for requests, lifespan shutdown. It
            # is told SIGINT whatever the signal was: once done, uvicorn re-raises the signal it
            # stopped for under the original handler, and for SIGTERM that is the default
            # action, death by signal (exit status 143), while SIGINT's KeyboardInterrupt is
            # swallowed by uvicorn.run: exit status 0, which is what a clean drain is.
            previous(signal.SIGINT, None)
