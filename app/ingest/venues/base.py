"""The one shape of every venue adapter: what a listener needs from an exchange.

An adapter knows one venue's protocol and nothing about sizing or storage: it opens and
authenticates the private stream, turns the venue's messages into domain ``Fill`` values, and
reads the leader's equity, positions and past fills over REST. ``VenueListener``
(app.ingest.venues.listener) does the rest, identically for every venue: reconnects with
backoff, heartbeats, the idle watchdog, backfill after every (re)connect, ordering, dedupe.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Protocol
from uuid import UUID

import httpx

from app.domain.model import Fill
from app.security.crypto import Credential


class VenueError(RuntimeError):
    """The venue refused or failed a request (auth, subscribe, REST): the session restarts."""


class StreamExpired(VenueError):
    """The venue says the stream is no longer valid (e.g. an expired listenKey): reconnect."""


class WebSocketLike(Protocol):
    """What on_open and ping need of the connection (websockets' ClientConnection)."""

    async def send(self, message: str) -> None: ...

    async def recv(self) -> str | bytes: ...


class VenueAdapter(ABC):
    """One venue. Subclasses set ``kind`` and implement the abstract methods.

    ``config`` is what the API stored as not secret (base URLs and venue options, already
    validated by the venue's feed model in app.ingest.venues.configs); ``credentials`` are
    the decrypted secrets, as ``Credential`` values that never print themselves.
    """

    kind: ClassVar[str]
    # Seconds between application-level pings (ping_frame); None: websocket pings only.
    app_ping_interval_s: ClassVar[float | None] = None
    # Seconds between keepalive() calls (e.g. Binance's listenKey); None: no keepalive.
    keepalive_interval_s: ClassVar[float | None] = None

    def __init__(
        self,
        leader_id: UUID,
        config: Mapping[str, Any],
        credentials: Mapping[str, Credential],
        http: httpx.AsyncClient,
    ) -> None:
        self.leader_id = leader_id
        self.config = config
        self.credentials = credentials
        # Base URL: config["rest_url"]; timeouts set by the listener.
        self.http = http

    @abstractmethod
    async def ws_url(self) -> str:
        """The private stream's URL (may need a REST call first, e.g. a listenKey)."""

    async def on_open(self, ws: WebSocketLike) -> None:
        """Authenticate and subscribe on a fresh connection; raise VenueError if refused.

        Messages read here that are not acks are not fills (nothing is subscribed yet).
        """
        return None

    def ping_frame(self) -> str | None:
        """The application-level ping to send every ``app_ping_interval_s``."""
        return None

    async def keepalive(self) -> None:
        """Keep the stream valid (called every ``keepalive_interval_s``)."""
        return None

    @abstractmethod
    def parse(self, raw: str | bytes, received_at: datetime) -> list[Fill]:
        """The fills in one stream message, in the venue's order.

        Returns [] for anything that is not a fill (acks, pongs, non-trade executions, other
        events). Raises app.ingest.frames.FrameError for a message that cannot be read, and
        StreamExpired when the venue announces the stream is dead.
        """

    @abstractmethod
    async def fetch_equity(self) -> Decimal:
        """The leader's account equity now (margin balance incl. unrealized PnL)."""

    @abstractmethod
    async def fetch_positions(self) -> dict[str, Decimal]:
        """The leader's open positions now: signed base quantity per symbol (short < 0)."""

    @abstractmethod
    async def backfill(self, since: datetime, received_at: datetime) -> list[Fill]:
        """The leader's fills with event time >= ``since``, oldest first, in exchange order.

        Pages through the venue's history API until it has all of them.
        """

    def describe(self) -> dict[str, Any]:
        """The non-secret config, as the API shows it."""
        return dict(self.config)
