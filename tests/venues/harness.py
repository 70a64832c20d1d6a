"""A venue on loopback, for adapter tests: the venue's REST routes and private websocket in
one Starlette app served by uvicorn, plus a TCP proxy in front of the websocket that can
drop every connection or freeze them (open but silent, pongs included).

Each venue's fake subclasses ``FakeVenue``: it adds its REST routes (``routes``), answers
the client's websocket messages (``on_message``: auth, subscribe, app-level ping) and keeps
the leader's fill history that its backfill endpoint pages through.

Forms a venue has retired (``retired_routes``) are served only to refuse them, as the venue
does, and are counted in ``retired_calls``: a test fails when an adapter uses one.

Extending a fake (e.g. order placement for follower execution, in a separate module): add
routes with ``add_routes`` before ``run_venue`` serves the app; they are mounted ahead of the
fake's own routes and may read and change the fake's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from app.domain.model import Fill
from app.ingest.frames import FrameError
from app.security.crypto import generate_key
from app.settings import Settings
from app.venues.feed import BadRow, Item
from tests.conftest import make_settings
from tests.support import serve_asgi


@dataclass
class RestCall:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeVenue:
    """Shared state and websocket plumbing; subclasses speak the venue's protocol."""

    ws_path: str = "/ws"
    sockets: set[WebSocket] = field(default_factory=set)
    # Every websocket message the client sent, decoded when it was JSON.
    received: list[Any] = field(default_factory=list)
    rest_calls: list[RestCall] = field(default_factory=list)
    connections: int = 0
    # While silent the server sends nothing, not even replies to app-level pings.
    silent: bool = False
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    # Requests made to a retired URL form (path or websocket), refused.
    retired_calls: list[str] = field(default_factory=list)
    extra_routes: list[BaseRoute] = field(default_factory=list)

    def routes(self) -> list[BaseRoute]:
        """The venue's REST routes. Record each call with ``record``."""
        return []

    def retired_routes(self) -> list[BaseRoute]:
        """Routes of URL forms the venue retired: each refuses and records the call."""
        return []

    def retired_websocket(self, path: str) -> WebSocketRoute:
        """A stream URL the venue retired: the handshake is refused, and recorded."""

        async def refuse(ws: WebSocket) -> None:
            self.retired_calls.append(ws.url.path)
            await ws.close(code=1008)

        return WebSocketRoute(path, refuse)

    def add_routes(self, *routes: BaseRoute) -> None:
        """Mount more routes on this fake (call before it is served)."""
        self.extra_routes.extend(routes)

    async def on_message(self, ws: WebSocket, message: Any) -> None:
        """Answer a client message (auth, subscribe, ping). Call ``mark_subscribed`` once the
        client is subscribed."""

    def ws_route_path(self) -> str:
        return self.ws_path

    async def record(self, request: Request) -> RestCall:
        call = RestCall(
            request.method,
            request.url.path,
            dict(request.query_params),
            {k.lower(): v for k, v in request.headers.items()},
            await request.body(),
        )
        self.rest_calls.append(call)
        return call

    def mark_subscribed(self) -> None:
        self.subscribed.set()

    async def wait_subscribed(self, within_s: float = 20) -> None:
        """Wait for the next subscription (cleared by ``drop``)."""
        await asyncio.wait_for(self.subscribed.wait(), within_s)

    async def push(self, message: Any) -> None:
        """Send a stream message (a dict is JSON-encoded) to every connected client."""
        text = message if isinstance(message, str) else json.dumps(message)
        for ws in list(self.sockets):
            with contextlib.suppress(Exception):
                await ws.send_text(text)

    async def send(self, ws: WebSocket, message: Any) -> None:
        if not self.silent:
            await ws.send_text(message if isinstance(message, str) else json.dumps(message))

    async def drop(self) -> None:
        """Close every client connection (as a venue restarting its gateway would)."""
        self.subscribed.clear()
        for ws in list(self.sockets):
            with contextlib.suppress(Exception):
                await ws.close(code=1012)
        self.sockets.clear()

    async def _ws(self, ws: WebSocket) -> None:
        await ws.accept()
        self.connections += 1
        self.sockets.add(ws)
        try:
            while True:
                raw = await ws.receive_text()
                try:
                    message: Any = json.loads(raw)
                except ValueError:
                    message = raw
                self.received.append(message)
                await self.on_message(ws, message)
        except WebSocketDisconnect:
            pass
        finally:
            self.sockets.discard(ws)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                *self.extra_routes,
                *self.routes(),
                WebSocketRoute(self.ws_route_path(), self._ws),
                *self.retired_routes(),
            ]
        )


class FreezingProxy:
    """A loopback TCP proxy: ``freeze`` keeps connections open but forwards nothing either way
    (a stalled socket: no messages, no pongs), ``cut`` aborts them."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.frozen = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thaw = asyncio.Event()
        self._thaw.set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, ConnectionError):
                while data := await src.read(65536):
                    await self._thaw.wait()
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.difference_update((writer, up_writer))

    def freeze(self) -> None:
        """Connections open now stall; new connections are frozen too until ``thaw``."""
        self.frozen = True
        self._thaw.clear()

    def thaw(self) -> None:
        """Forward again. Connections frozen meanwhile are aborted: their bytes are stale."""
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        self.frozen = False
        self._thaw.set()

    async def cut(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def close(self) -> None:
        await self.cut()
        if self._server:
            self._server.close()
            await self._server.wait_closed()


@dataclass
class Running:
    venue: FakeVenue
    proxy: FreezingProxy
    rest_url: str  # http://127.0.0.1:<port>
    ws_base: str  # ws://127.0.0.1:<proxy port>: the websocket goes through the proxy


@contextlib.asynccontextmanager
async def run_venue(venue: FakeVenue) -> AsyncIterator[Running]:
    """Serve ``venue`` on loopback (REST direct, websocket through a FreezingProxy)."""
    async with serve_asgi(venue.app()) as port:
        proxy = FreezingProxy(port)
        await proxy.start()
        try:
            yield Running(venue, proxy, f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{proxy.port}")
        finally:
            await proxy.close()
            # Close the venue's sockets first: the server waits for open connections.
            await venue.drop()


def venue_settings(**overrides: Any) -> Settings:
    """The service's settings for a fake venue: a credentials key, and timings short enough
    that reconnects, lease hand-overs and equity polls happen within a test."""
    values: dict[str, Any] = {
        "credentials_key": generate_key(),
        "feed_ping_interval_s": 0.3,
        "venue_idle_timeout_s": 1.5,
        "lease_heartbeat_s": 0.3,
        "lease_ttl_s": 1.0,
        "venue_equity_interval_s": 0.5,
    }
    return make_settings(**{**values, **overrides})


def fills_of(items: list[Item]) -> list[Fill]:
    """The fills of a parsed message; the error of its first unreadable row, as a FrameError
    (what a test of one row's defect expects)."""
    for item in items:
        if isinstance(item, BadRow):
            raise FrameError(item.error, item.reason)
    return [item for item in items if isinstance(item, Fill)]


async def backfilled(pages: AsyncIterator[list[Item]]) -> list[Fill]:
    """Every fill of a backfill, in order (no unreadable row allowed)."""
    return fills_of([item async for page in pages for item in page])


async def backfilled_items(pages: AsyncIterator[list[Item]]) -> list[Item]:
    return [item async for page in pages for item in page]
