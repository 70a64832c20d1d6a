"""The venues' websocket order APIs, shared: one socket per account, requests pipelined on it
and matched to their answers by a key, REST the fallback while the socket is down.

Each venue's ``ws_orders.py`` says how its frames look (``encode`` its request, ``decode`` an
answer to its key) and how a socket logs in; this module owns the connection.

Exactly once rests on one split. A request either surely did not leave (the socket could not
be opened or logged in: :class:`SocketUnavailable`, and the caller sends it over REST), or it
may have reached the venue: an answer that never comes (a timeout, the socket closed first,
a send that failed half-way) raises :class:`OutcomeUnknown`, and the executor queries by
client id before it sends anything again, as for a REST timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import structlog

from app.loops import Backoff
from app.venues.configs import DEFAULT_URLS
from app.venues.execution import OutcomeUnknown, check_send_by

log = structlog.get_logger(__name__)

# How long after a failed connection or login orders go over REST before the socket is
# tried again (jittered, doubling up to the maximum).
RETRY_INITIAL_S = 1.0
RETRY_MAX_S = 60.0

Decode = Callable[[str], tuple[str | None, Any]]
Login = Callable[["Exchange"], Awaitable[None]]


def order_socket_url(config: Mapping[str, Any], kind: str, venue_url: str) -> str | None:
    """An account's order socket: ``ws_api_url`` when set; ``venue_url``, the venue's own,
    for an account on the venue's public stream URL; None (REST only) for another server
    (a testnet, a local one) named without one."""
    if config.get("ws_api_url"):
        return str(config["ws_api_url"])
    public = DEFAULT_URLS[kind][1]
    return venue_url if str(config.get("ws_url") or public).rstrip("/") == public else None


class SocketUnavailable(Exception):
    """The request was not sent (the socket is down), or the venue refused it unplaced on
    the socket: send it over REST."""


class Exchange:
    """Send one frame and wait for the answer with ``key``: what a venue's login uses on a
    socket not yet open for orders."""

    def __init__(self, socket: OrderSocket, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._socket = socket
        self._ws = ws

    async def __call__(self, key: str, text: str) -> Any:
        return await self._socket._exchange(self._ws, key, text)


class OrderSocket:
    """One account's order socket. ``request`` opens it on first use (and after a drop)."""

    def __init__(
        self,
        url: str,
        session: Callable[[], aiohttp.ClientSession],
        decode: Decode,
        timeout_s: float,
        login: Login | None = None,
        ping: str | None = None,
        ping_interval_s: float = 20.0,
    ) -> None:
        self.url = url
        self._session = session
        self._decode = decode
        self._timeout_s = timeout_s
        self._login = login
        self._ping = ping
        self._ping_interval_s = ping_interval_s
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._lock = asyncio.Lock()
        self._retry = Backoff(RETRY_INITIAL_S, RETRY_MAX_S)
        self._retry_at = 0.0
        self.opened = 0  # connections made, for tests and metrics

    @property
    def up(self) -> bool:
        return self._ws is not None and not self._ws.closed

    async def request(self, key: str, text: str) -> Any:
        """Send ``text`` and return the decoded answer carrying ``key``.

        Raises SocketUnavailable when the frame was not sent, OutcomeUnknown when it may
        have been and no answer came.
        """
        ws = await self._open()
        check_send_by()  # opening and logging in may have taken the order past its deadline
        return await self._exchange(ws, key, text)

    async def _exchange(self, ws: aiohttp.ClientWebSocketResponse, key: str, text: str) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            try:
                await ws.send_str(text)
            except (ConnectionError, aiohttp.ClientError, RuntimeError) as exc:
                raise OutcomeUnknown(f"order socket send: {type(exc).__name__}") from exc
            try:
                async with asyncio.timeout(self._timeout_s):
                    return await future
            except TimeoutError as exc:
                # A half-open connection (the venue gone without a FIN) looks open forever:
                # one left unanswered this long is dropped, so the next request (this one's
                # resend after the query) opens a new one or goes over REST.
                if ws is self._ws:
                    await self.close()
                raise OutcomeUnknown(f"order socket: no answer in {self._timeout_s}s") from exc
        finally:
            self._pending.pop(key, None)

    async def _open(self) -> aiohttp.ClientWebSocketResponse:
        if self._ws is not None and not self._ws.closed:
            return self._ws
        async with self._lock:
            if self._ws is not None and not self._ws.closed:
                return self._ws
            if time.monotonic() < self._retry_at:
                raise SocketUnavailable(f"order socket down, retried later: {self.url}")
            try:
                ws = await self._connect()
            except (
                OSError,
                aiohttp.ClientError,
                TimeoutError,
                OutcomeUnknown,
                LoginRefused,
            ) as exc:
                self._retry_at = time.monotonic() + self._retry.next_delay()
                log.warning("order_socket_unavailable", url=self.url, error=repr(exc)[:200])
                raise SocketUnavailable(f"order socket: {type(exc).__name__}") from exc
            self._retry.reset()
            self._ws = ws
            self.opened += 1
            return ws

    async def _connect(self) -> aiohttp.ClientWebSocketResponse:
        ws = await self._session().ws_connect(
            self.url, timeout=aiohttp.ClientWSTimeout(ws_close=self._timeout_s), autoping=True
        )
        # A connection the venue closed leaves its keepalive asleep: not carried over.
        for task in self._tasks:
            task.cancel()
        self._tasks = [asyncio.create_task(self._read(ws))]
        if self._ping is not None:
            self._tasks.append(asyncio.create_task(self._keepalive(ws, self._ping)))
        try:
            async with asyncio.timeout(self._timeout_s):
                if self._login is not None:
                    await self._login(Exchange(self, ws))
        except BaseException:
            await self._drop(ws)
            raise
        return ws

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for message in ws:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    key, answer = self._decode(message.data)
                except ValueError:
                    log.warning("order_socket_unreadable", url=self.url, frame=message.data[:200])
                    continue
                future = self._pending.get(key) if key is not None else None
                if future is not None and not future.done():
                    future.set_result(answer)
        finally:
            # Whatever was sent and not answered may have been applied.
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(OutcomeUnknown("order socket closed before the answer"))

    async def _keepalive(self, ws: aiohttp.ClientWebSocketResponse, text: str) -> None:
        with contextlib.suppress(ConnectionError, aiohttp.ClientError, RuntimeError):
            while not ws.closed:
                await asyncio.sleep(self._ping_interval_s)
                await ws.send_str(text)

    async def _drop(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await ws.close()

    async def close(self) -> None:
        # Forgotten first: a request arriving while the close handshake waits opens anew.
        ws, self._ws = self._ws, None
        if ws is not None:
            await self._drop(ws)


class LoginRefused(Exception):
    """The venue refused the socket's login: orders go over REST, whose answer says why."""
