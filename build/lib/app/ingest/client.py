"""Client-mode feeds: the service connects to the leader's websocket and keeps it connected."""

from __future__ import annotations

import asyncio
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

    state: str = "starting"  # starting | connecting | connected | stopped
    connected_at: datetime | None = None
    last_message_at: datetime | None = None
    reconnects: int = 0
    last_error: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "state": self.state,
            "connected_at": self.connected_at.isoformat() if self.connected_at else None,
            "last_message_at": self.last_message_at.isoformat() if self.last_message_at else None,
            "reconnects": self.reconnects,
            "last_error": self.last_error,
        }


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
        retry = Backoff(self._retry_initial_s, self._retry_max_s)
        while True:
            try:
                await handle_frame(self._pipeline, self.leader_id, raw, source="generic")
                self.status.state = "connected"
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.status.state = "paused"
                self.status.last_error = f"{type(exc).__name__}: {exc}"[:300]
                delay = retry.next_delay()
                log.warning(
                    "feed_paused", leader_id=str(self.leader_id), error=repr(exc), retry_in_s=delay
                )
                await asyncio.sleep(delay)

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
                        raw = await asyncio.wait_for(
                            ws.recv(), timeout=self._idle_timeout_s or None
                        )
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


class ListenerManager:
    """One listener per client-mode leader, started and stopped as leaders come and go."""

    def __init__(
        self,
        pipeline: Pipeline,
        reconnect_initial_s: float,
        reconnect_max_s: float,
        ping_interval_s: float,
        idle_timeout_s: float,
        max_frame_bytes: int,
    ) -> None:
        self._pipeline = pipeline
        self._initial = reconnect_initial_s
        self._max = reconnect_max_s
        self._ping = ping_interval_s
        self._idle = idle_timeout_s
        self._max_frame = max_frame_bytes
        self.listeners: dict[UUID, GenericFeedListener] = {}

    def ensure(self, leader_id: UUID, url: str) -> None:
        if leader_id in self.listeners:
            return
        listener = GenericFeedListener(
            leader_id,
            url,
            self._pipeline,
            Backoff(self._initial, self._max),
            self._ping,
            self._idle,
            self._max_frame,
        )
        self.listeners[leader_id] = listener
        listener.start()

    async def remove(self, leader_id: UUID) -> None:
        listener = self.listeners.pop(leader_id, None)
        if listener:
            await listener.stop()

    async def stop_all(self) -> None:
        for leader_id in list(self.listeners):
            await self.remove(leader_id)

    def state(self, leader_id: UUID) -> dict[str, object] | None:
        listener = self.listeners.get(leader_id)
        return listener.status.as_dict() if listener else None

    @property
    def healthy(self) -> bool:
        return all(listener.alive for listener in self.listeners.values())
