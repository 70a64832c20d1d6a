"""Hostile-input limits in front of every route, as pure ASGI middlewares (no body buffering by
Starlette's BaseHTTPMiddleware, no effect on websockets unless stated).

- ``BodySizeLimit``: a REST body over the limit answers 413 before any route reads it.
- ``RateLimit``: a token bucket per credential (the SHA-256 of the bearer token, else the client
  address) on ``/v1`` routes; an empty bucket answers 429 with ``Retry-After``.
- ``OriginCheck``: a websocket handshake from a browser Origin outside the allow-list is refused
  (403) before any route runs.
"""

from __future__ import annotations

import json
import math
import time
from collections import OrderedDict
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.auth import bearer_token, hash_secret

# Enough buckets for every active client; the least recently seen ones go first.
MAX_BUCKETS = 100_000


async def _send_json(
    send: Send, status: int, detail: str, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class BodySizeLimit:
    """Refuse request bodies over ``max_bytes`` with 413.

    A declared ``Content-Length`` over the limit is refused before reading; otherwise the body
    is read here (at most ``max_bytes`` + 1 bytes, so a chunked body cannot grow unbounded) and
    replayed to the route.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away: let the route see the disconnect.
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        whole: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([whole], receive), send)

    async def _too_large(self, send: Send) -> None:
        await _send_json(send, 413, f"request body larger than {self.max_bytes} bytes")


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


class TokenBuckets:
    """Token buckets by key: ``burst`` requests at once, refilled at ``rate`` per second."""

    def __init__(self, rate: float, burst: int, max_keys: int = MAX_BUCKETS) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_keys = max_keys
        # key -> (tokens, time of the last update)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str, now: float) -> float:
        """Take one token for ``key``: 0.0 if granted, else the seconds until one is free."""
        tokens, last = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait


class RateLimit:
    """Rate-limit ``/v1`` REST requests per credential (health, readiness and metrics are free).

    Keyed by the hash of the bearer token, so a stolen-and-hammered key or a brute-force run
    from one address is slowed down without keeping any token in memory. In-process: each
    instance counts its own requests.
    """

    def __init__(self, app: ASGIApp, rate: float, burst: int) -> None:
        self.app = app
        self.buckets = TokenBuckets(rate, burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(self._key(scope), time.monotonic())
        if wait > 0:
            retry_after = str(max(1, math.ceil(wait))).encode()
            await _send_json(send, 429, "rate limit exceeded", [(b"retry-after", retry_after)])
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _key(scope: Scope) -> str:
        token = bearer_token(_header(scope, b"authorization"))
        if token:
            return "key:" + hash_secret(token)
        client = scope.get("client")
        return "ip:" + (str(client[0]) if client else "unknown")


class OriginCheck:
    """Refuse websocket handshakes whose Origin is not in ``allowed`` (an empty list allows all).

    Only browsers send Origin, and a browser page on another site is exactly the cross-site
    websocket hijacking this prevents; clients outside browsers send none and pass.
    """

    def __init__(self, app: ASGIApp, allowed: Iterable[str]) -> None:
        self.app = app
        self.allowed = frozenset(origin.rstrip("/").lower() for origin in allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and self.allowed:
            origin = _header(scope, b"origin")
            if origin is not None and origin.rstrip("/").lower() not in self.allowed:
                # Closing before accept makes the server answer the handshake with 403.
                await receive()  # websocket.connect
                await send({"type": "websocket.close", "code": 1008, "reason": "origin refused"})
                return
        await self.app(scope, receive, send)
