"""Client-mode feeds: the service connects to the leader's websocket and keeps it connected."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import structlog
from websockets.asyncio.client import connect

from app.ingest.handler import handle_frame
from app.loops import Backoff, SupervisedTask
from app.metrics import LISTENERS_CONNECTED, RECONNECTS
from app.pipeline import Pipeline

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class ListenerState:
    """What /readyz and the leader API report about one feed connection."""

    kind: str = "generic"
    state: str = "starting"  # starting | connecting | connected | paused | stopped
    connected_at: datetime | None = None
    last_message_at: datetime | None = None
    reconnects: int = 0
    last_error: str | None = None
    # Venue feeds: fills recovered over REST, the newest fill applied, the last equity read.
    backfilled: int = 0
    last_fill_at: datetime | None = None
    equity_at: datetime | None = None

    def as_dict(self) -> dict[str, object]:
        def iso(at: datetime | None) -> str | None:
            return at.isoformat() if at else None

        return {
            "kind": self.kind,
            "state": self.state,
            "connected_at": iso(self.connected_at),
            "last_message_at": iso(self.last_message_at),
            "reconnects": self.reconnects,
            "last_error": self.last_error,
            "backfilled": self.backfilled,
            "last_fill_at": iso(self.last_fill_at),
            "equity_at": iso(self.equity_at),
        }


async def until_recorded(
    call: Callable[[], Awaitable[object]], status: ListenerState, leader_id: UUID, retry: Backoff
) -> None:
    """Retry ``call`` until it succeeds, the listener marked "paused" meanwhile. A listener
    pauses on the fill it holds rather than drop it; it reads nothing more until then."""
    while True:
        try:
            await call()
            if status.state == "paused":
                status.state = "connected"
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            status.state = "paused"
            status.last_error = f"{type(exc).__name__}: {exc}"[:300]
            delay = retry.next_delay()
            log.warning("feed_paused", leader_id=str(leader_id), error=repr(exc), retry_in_s=delay)
            await asyncio.sleep(delay)


class GenericFeedListener:
    """Connect to a generic JSON feed, process its frames in order, reconnect with backoff."""

    def __init__(
        self,
        leader_id: UUID,
        url: str,
        pipeline: Pipeline,
        backoff: Backoff,
        ping_interval_s: float,
        idle_timeout_s: float,
        max_frame_bytes: int,
    ) -> None:
        self.leader_id = leader_id
        self.url = url
        self._pipeline = pipeline
        self._ping_interval_s = ping_interval_s
        self._retry_initial_s = backoff.initial
        self._retry_max_s = backoff.maximum
        self._idle_timeout_s = idle_timeout_s
        self._max_frame_bytes = max_frame_bytes
        self.status = ListenerState()
        self._loop = SupervisedTask(f"feed:{leader_id}", self._session, backoff)

    def start(self) -> None:
        self._loop.start()

    @property
    def alive(self) -> bool:
        return self._loop.alive

    async def stop(self) -> None:
        await self._loop.stop()
        self.status.state = "stopped"

    async def _process(self, raw: str | bytes) -> None:
        """Process one frame, retrying until it is recorded: a client-mode feed has no ack
        to withhold, so while Postgres is away the feed pauses on this frame instead of
        dropping it (websocket backpressure holds the rest)."""
        await until_recorded(
            lambda: handle_frame(self._pipeline, self.leader_id, raw, source="generic"),
            self.status,
            self.leader_id,
            Backoff(self._retry_initial_s, self._retry_max_s),
        )

    async def _session(self, backoff: Backoff) -> None:
        self.status.state = "connecting"
        try:
            async with connect(
                self.url,
                max_size=self._max_frame_bytes,
                ping_interval=self._ping_interval_s,
                ping_timeout=self._ping_interval_s,
                open_timeout=10,
            ) as ws:
                self.status.state = "connected"
                self.status.connected_at = datetime.now(UTC)
                LISTENERS_CONNECTED.inc()
                log.info("feed_connected", leader_id=str(self.leader_id))
                try:
                    while True:
                        # Pings catch a dead peer; the idle timeout, a live peer that went quiet.
                        # (asyncio.timeout: wait_for can lose a racing cancellation on 3.11.)
                        async with asyncio.timeout(self._idle_timeout_s or None):
                            raw = await ws.recv()
                        self.status.last_message_at = datetime.now(UTC)
                        await self._process(raw)
                        backoff.reset()
                finally:
                    LISTENERS_CONNECTED.dec()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.status.last_error = f"{type(exc).__name__}: {exc}"[:300]
            self.status.reconnects += 1
            self.status.state = "connecting"
            RECONNECTS.inc()
            raise
