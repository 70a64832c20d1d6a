"""Requests over one websocket (websocket/post-requests docs): the fast path for orders.

``{"method": "post", "id": n, "request": {"type": "action" | "info", "payload": ...}}`` is
answered on the ``post`` channel with the same ``id`` and the payload /exchange or /info
would have returned, or ``{"type": "error", "payload": "<HTTP status and description>"}``.
Requests are pipelined on the one connection; an answer finds its request by ``id``. When the
connection drops, every request still waiting has an unknown outcome; the next request opens a
new connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import Any, Literal

import aiohttp
import msgspec

from app.venues.execution import OutcomeUnknown, RateLimited

PING_INTERVAL_S = 30.0


class PostError(Exception):
    """The venue answered the request with an HTTP-like error (not 429, not 5xx): not applied."""


class _PostData(msgspec.Struct, frozen=True):
    id: int
    response: _PostResponse


class _PostResponse(msgspec.Struct, frozen=True):
    type: str
    payload: msgspec.Raw = msgspec.Raw(b"null")


class _Frame(msgspec.Struct, frozen=True):
    channel: str
    data: msgspec.Raw = msgspec.Raw(b"null")


_frame = msgspec.json.Decoder(_Frame)
_data = msgspec.json.Decoder(_PostData)
_text = msgspec.json.Decoder(str)


class WsPoster:
    """Pipelined post requests on one lazily opened websocket."""

    def __init__(self, session: aiohttp.ClientSession, url: str, timeout_s: float) -> None:
        self._session = session
        self._url = url
        self._timeout_s = timeout_s
        self._ids = itertools.count(1)
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pinger: asyncio.Task[None] | None = None
        self._waiting: dict[int, asyncio.Future[bytes]] = {}
        self._opening = asyncio.Lock()

    async def _connection(self) -> aiohttp.ClientWebSocketResponse:
        async with self._opening:
            if self._ws is None or self._ws.closed:
                # Raises aiohttp.ClientError or TimeoutError before anything was sent: the
                # caller may use REST.
                async with asyncio.timeout(self._timeout_s):
                    ws = await self._session.ws_connect(
                        self._url, timeout=aiohttp.ClientWSTimeout(ws_close=self._timeout_s)
                    )
                self._ws = ws
                self._reader = asyncio.create_task(self._read(ws))
                self._pinger = asyncio.create_task(self._ping(ws))
            return self._ws

    async def request(self, kind: Literal["action", "info"], payload: dict[str, Any]) -> bytes:
        """The payload of the answer, as raw JSON."""
        ws = await self._connection()
        request_id = next(self._ids)
        answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = answer
        message = {
            "method": "post",
            "id": request_id,
            "request": {"type": kind, "payload": payload},
        }
        try:
            await ws.send_str(msgspec.json.encode(message).decode())
            return await asyncio.wait_for(asyncio.shield(answer), self._timeout_s)
        except (aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
            raise OutcomeUnknown(f"post {kind}: {type(exc).__name__}: {exc}") from exc
        finally:
            self._waiting.pop(request_id, None)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for frame in ws:
                if frame.type is aiohttp.WSMsgType.TEXT:
                    self._answer(frame.data)
        finally:
            lost = OutcomeUnknown("post: the connection closed before the answer")
            for answer in self._waiting.values():
                if not answer.done():
                    answer.set_exception(lost)

    def _answer(self, raw: str) -> None:
        try:
            frame = _frame.decode(raw)
            if frame.channel != "post":
                return  # a pong
            data = _data.decode(frame.data)
        except msgspec.DecodeError:
            return
        answer = self._waiting.get(data.id)
        if answer is None or answer.done():
            return
        if data.response.type != "error":
            answer.set_result(bytes(data.response.payload))
            return
        try:
            text = _text.decode(data.response.payload)
        except msgspec.DecodeError:
            text = bytes(data.response.payload).decode(errors="replace")
        answer.set_exception(_error(text))

    async def _ping(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        with contextlib.suppress(ConnectionError, aiohttp.ClientError):
            while not ws.closed:
                await asyncio.sleep(PING_INTERVAL_S)
                await ws.send_str('{"method":"ping"}')

    async def close(self) -> None:
        for task in (self._pinger, self._reader):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._ws is not None:
            await self._ws.close()
        self._ws = None


def _error(text: str) -> Exception:
    """The exception an error answer means: its text mirrors the HTTP status line."""
    status = text.split(" ", 1)[0]
    if status == "429":
        return RateLimited(1.0, f"post: {text[:200]}")
    if status.isdigit() and int(status) >= 500:
        return OutcomeUnknown(f"post: {text[:200]}")
    return PostError(text[:200])
