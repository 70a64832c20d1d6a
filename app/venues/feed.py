"""The one shape of every venue adapter: what a listener needs from an exchange.

An adapter knows one venue's protocol and nothing about sizing or storage: it opens and
authenticates the private stream, turns the venue's messages into domain ``Fill`` values, and
reads the leader's equity, positions and past fills over REST. ``VenueListener``
(app.venues.listener) does the rest, identically for every venue: reconnects with
backoff, heartbeats, the idle watchdog, backfill after every (re)connect, ordering, dedupe.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Protocol
from uuid import UUID

import httpx
import msgspec

from app.domain.model import Fill
from app.domain.quarantine import QuarantineReason
from app.ingest.frames import FrameError
from app.security.crypto import Credential

# Fills whose venue position-before is remembered until the listener applies them.
_STARTS_KEPT = 50_000


class VenueError(RuntimeError):
    """The venue refused or failed a request (auth, subscribe, REST): the session restarts."""


class StreamExpired(VenueError):
    """The venue says the stream is no longer valid (e.g. an expired listenKey): reconnect."""


@dataclass(frozen=True, slots=True)
class BadRow:
    """One row of a stream message or a history page that could not be read.

    It is quarantined with its reason while the rows around it are applied: one corrupt fill
    must not hold back a leader's good ones, nor stop its backfill for good.
    """

    raw: str
    error: str
    reason: QuarantineReason

    @classmethod
    def of(cls, row: object, error: FrameError) -> BadRow:
        return cls(_row_text(row), str(error), error.quarantine or QuarantineReason.MALFORMED_ROW)


Item = Fill | BadRow


@dataclass(frozen=True, slots=True)
class VenuePosition:
    """The venue's word on one of the leader's positions (signed base quantity).

    ``price`` is the venue's mark (or, without one, entry) price: what a follower is sized at
    when there is no fill to take a price from. ``exact`` is False where the venue's figure
    cannot equal the sum of the fills to the last digit (Bybit's inverse contracts converted
    at the average entry price): such positions are never used to resync.
    """

    symbol: str
    qty: Decimal
    price: Decimal | None
    exact: bool = True


def _row_text(row: object) -> str:
    try:
        return msgspec.json.encode(row).decode()
    except (TypeError, msgspec.EncodeError):
        return repr(row)


class WebSocketLike(Protocol):
    """What on_open and ping need of the connection (websockets' ClientConnection)."""

    async def send(self, message: str) -> None: ...

    async def recv(self) -> str | bytes: ...


class VenueAdapter(ABC):
    """One venue. Subclasses set ``kind`` and implement the abstract methods.

    ``config`` is what the API stored as not secret (base URLs and venue options, already
    validated by the venue's feed model in app.venues.configs); ``credentials`` are
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
        # fill_id -> the leader's position just before that fill, where the venue says it.
        self._starts: OrderedDict[str, Decimal] = OrderedDict()

    async def rest(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> httpx.Response:
        """One REST call to the venue, ``url`` relative to ``config["rest_url"]`` and sent as
        given (its query string is what was signed). A call that fails in transport raises
        VenueError; the answer, whatever its status, is the venue's to read."""
        try:
            return await self.http.request(method, url, headers=headers, json=json)
        except httpx.HTTPError as exc:
            path = url.partition("?")[0]
            raise VenueError(f"{self.kind} {method} {path}: {type(exc).__name__}") from exc

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
    def parse(self, raw: str | bytes, received_at: datetime) -> list[Item]:
        """The fills in one stream message, in the venue's order, and a BadRow in place of
        each row that cannot be read.

        Returns [] for anything that is not a fill (acks, pongs, non-trade executions, other
        events). Raises app.ingest.frames.FrameError for a message that cannot be read at
        all, and StreamExpired when the venue announces the stream is dead.
        """

    def remember_start(self, fill_id: str, position: Decimal) -> None:
        """Record the venue's position before ``fill_id`` (e.g. Hyperliquid's startPosition)."""
        self._starts[fill_id] = position
        if len(self._starts) > _STARTS_KEPT:
            self._starts.popitem(last=False)

    def position_before(self, fill: Fill) -> Decimal | None:
        """The venue's position in ``fill.symbol`` just before ``fill``, if it says so."""
        return self._starts.pop(fill.fill_id, None)

    @abstractmethod
    async def fetch_equity(self) -> Decimal:
        """The leader's account equity now (margin balance incl. unrealized PnL)."""

    @abstractmethod
    async def positions(self) -> list[VenuePosition]:
        """The leader's open positions now, with the venue's mark or entry price."""

    async def positions_of(self, symbols: list[str]) -> list[VenuePosition]:
        """The positions in ``symbols``, which ``positions()`` did not list. By default its
        list is complete: they are flat. An adapter whose list may leave symbols out (Bybit
        lists by settle coin) asks for each."""
        return []

    async def fetch_positions(self) -> dict[str, Decimal]:
        """The leader's open positions now: signed base quantity per symbol (short < 0)."""
        return {p.symbol: p.qty for p in await self.positions() if p.qty != 0}

    @abstractmethod
    def backfill(self, since: datetime, received_at: datetime) -> AsyncIterator[list[Item]]:
        """The leader's fills with event time >= ``since``, oldest first, in exchange order,
        a batch at a time (a page, or a time window), so a long history is never held whole.

        A row that cannot be read comes as a BadRow in its place; the paging goes on.
        """

    def describe(self) -> dict[str, Any]:
        """The non-secret config, as the API shows it."""
        return dict(self.config)


def http_client(base_url: str, timeout_s: float) -> httpx.AsyncClient:
    """The REST client of one adapter: its venue's base URL, bounded timeouts."""
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout_s),
        headers={"User-Agent": "copytrade"},
        follow_redirects=False,
    )
