"""Hostile-input limits in front of every route, as pure ASGI middlewares (no body buffering by
Starlette's BaseHTTPMiddleware, no effect on websockets unless stated).

- ``BodySizeLimit``: a REST body over the limit answers 413 before any route reads it.
- ``RateLimit``: on ``/v1`` routes, a moving window per credential (the SHA-256 of the bearer
  token) and one per client address for requests with no credential known to be good, kept in
  Redis and checked before any lookup; past either, 429 with ``Retry-After``.
- ``OriginCheck``: a websocket handshake from a browser Origin outside the allow-list is refused
  (403) before any route runs.
"""

from __future__ import annotations

import hmac
import json
import math
import time
from collections import OrderedDict
from collections.abc import Iterable
from urllib.parse import parse_qs

import structlog
from limits import RateLimitItem, RateLimitItemPerSecond, parse_many
from limits.aio.storage import RedisClusterStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from packaging.version import Version
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.auth import AUTH_OUTCOME, bearer_token, hash_secret
from app.metrics import RATE_LIMIT_ERRORS, RATE_LIMITED

log = structlog.get_logger(__name__)

PREFIX = "copytrade:limits"
# Credentials remembered as good, least recently used forgotten first.
MAX_KNOWN = 100_000


# limits' Redis storages import every client they can drive (redis-py, coredis, valkey) when
# the first one is built, whichever is used: coredis brings beartype, pympler and numpy, a
# fifth of a service process's start-up CPU (docs/measurements.md). These import redis-py
# alone, the one they are given. Without a STORAGE_SCHEME they take no URI scheme from limits'
# own classes.
class _RedisPyStorage(RedisStorage):
    DEPENDENCIES = {"redis": Version("5.2.0")}  # noqa: RUF012 - limits reads the class attribute


class _RedisPyClusterStorage(RedisClusterStorage):
    DEPENDENCIES = {"redis": Version("5.2.0")}  # noqa: RUF012 - limits reads the class attribute


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


class AbuseLimiter:
    """Moving windows in Redis (the ``limits`` library), shared by every instance.

    Two limits: one per credential (``burst`` requests per ``burst / rate`` seconds), and
    one per client address for requests that carry no credential this instance has seen
    succeed. The second is counted before the route looks anything up, so made-up tokens
    cost a Redis call each, never a database query, and cannot open fresh buckets of their
    own. If Redis fails the request goes through (counted in a metric): the API stays up.
    """

    def __init__(
        self, redis_url: str, cluster: bool, rate: float, burst: int, per_address: str
    ) -> None:
        storage: RedisStorage
        if cluster:
            address = redis_url.split("://", 1)[1].split("/", 1)[0]
            storage = _RedisPyClusterStorage(
                f"async+redis+cluster://{address}", implementation="redispy", key_prefix=PREFIX
            )
        else:
            storage = _RedisPyStorage(
                "async+" + redis_url, implementation="redispy", key_prefix=PREFIX
            )
        self._limiter = MovingWindowRateLimiter(storage)
        window = max(1, math.ceil(burst / rate))
        self.per_credential = RateLimitItemPerSecond(burst, window)
        self.per_address = parse_many(per_address)
        # Credentials that authenticated here lately: they skip the address limit (an honest
        # client behind an address that is also flooding still gets through).
        self._known: OrderedDict[str, None] = OrderedDict()
        self._failed_at = 0.0

    def known(self, key_hash: str) -> bool:
        if key_hash in self._known:
            self._known.move_to_end(key_hash)
            return True
        return False

    def learn(self, key_hash: str, ok: bool) -> None:
        """Remember (or forget) that ``key_hash`` authenticated."""
        if ok:
            self._known[key_hash] = None
            self._known.move_to_end(key_hash)
            if len(self._known) > MAX_KNOWN:
                self._known.popitem(last=False)
        else:
            self._known.pop(key_hash, None)

    async def address(self, client: str) -> float:
        """Count a request from ``client`` without a known credential: 0.0 if allowed, else
        the seconds until it would be."""
        waits = [await self._take(item, "addr", client) for item in self.per_address]
        return max(waits)

    async def credential(self, key_hash: str) -> float:
        """Count a request made with the credential hashed ``key_hash``."""
        return await self._take(self.per_credential, "key", key_hash)

    async def _take(self, item: RateLimitItem, kind: str, key: str) -> float:
        try:
            if await self._limiter.hit(item, kind, key):
                return 0.0
            stats = await self._limiter.get_window_stats(item, kind, key)
        except Exception as exc:
            RATE_LIMIT_ERRORS.inc()
            now = time.monotonic()
            if now - self._failed_at > 10:  # one line per 10 s, not one per request
                self._failed_at = now
                log.warning("rate_limit_unavailable", error=repr(exc))
            return 0.0
        return max(1.0, stats.reset_time - time.time())


class RateLimit:
    """Rate-limit ``/v1`` requests (health, readiness and metrics are free).

    A REST request with a credential counts against that credential (its SHA-256: no token
    is kept); one with no credential, or one not known to have authenticated here, first
    counts against its client address, before any route runs. Websocket handshakes count
    only against the address, and only when their credential is not known. Both limits are
    kept in Redis: every instance sees the same counts.
    """

    def __init__(self, app: ASGIApp, limiter: AbuseLimiter, admin_token: str) -> None:
        self.app = app
        self.limiter = limiter
        self._admin = admin_token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket") or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        token = bearer_token(_header(scope, b"authorization"))
        if token is None and kind == "websocket":
            token = _query_token(scope)
        admin = token is not None and hmac.compare_digest(token.encode(), self._admin)
        key_hash = hash_secret(token) if token and not admin else None
        if not admin and (key_hash is None or not self.limiter.known(key_hash)):
            client = scope.get("client")
            wait = await self.limiter.address(str(client[0]) if client else "unknown")
            if wait > 0:
                RATE_LIMITED.labels(limit="address").inc()
                await self._refuse(kind, receive, send, wait)
                return
        if kind == "http" and token is not None:
            wait = await self.limiter.credential(hash_secret(token) if admin else str(key_hash))
            if wait > 0:
                RATE_LIMITED.labels(limit="credential").inc()
                await self._refuse(kind, receive, send, wait)
                return
        try:
            await self.app(scope, receive, send)
        finally:
            outcome = scope.get(AUTH_OUTCOME)
            if key_hash is not None and outcome is not None:
                self.limiter.learn(key_hash, bool(outcome))

    @staticmethod
    async def _refuse(kind: str, receive: Receive, send: Send, wait: float) -> None:
        if kind == "websocket":
            # Closing before accept makes the server answer the handshake with 403.
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1013, "reason": "rate limited"})
            return
        retry_after = str(max(1, math.ceil(wait))).encode()
        await _send_json(send, 429, "rate limit exceeded", [(b"retry-after", retry_after)])


def _query_token(scope: Scope) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
    return values[0] if values else None


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
