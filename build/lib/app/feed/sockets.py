"""Open websockets by the hash of the credential that opened them, so a revoked credential's
sockets close at once on every instance.

Rotating or revoking a follower key or a push token publishes the old hash on
``copytrade:revocations``; each instance's registry sets the ``revoked`` event of its sockets
with that hash, and their handlers close them with 1008. Messages published while this
instance's Redis subscription was down are lost, so after every (re)subscription each open
socket checks its credential again.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import structlog
from fastapi import WebSocket, status
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from app.loops import Backoff, SupervisedTask

log = structlog.get_logger(__name__)

REVOCATION_CHANNEL = "copytrade:revocations"

Check = Callable[[], Awaitable[bool]]


class Lease:
    """One open socket's hold on its credential; ``revoked`` is set when the credential dies."""

    def __init__(self, key_hash: str, check: Check) -> None:
        self.key_hash = key_hash
        self.check = check
        self.revoked = asyncio.Event()


class SocketRegistry:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._pubsub: PubSub = redis.pubsub(ignore_subscribe_messages=True)
        self._leases: dict[str, set[Lease]] = defaultdict(set)
        self._loop = SupervisedTask("revocations", self._pump, Backoff(0.2, 5.0))
        # Set while this instance hears revocations published by the others.
        self.listening = asyncio.Event()

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]

    def open(self, key_hash: str, limit: int | None, check: Check) -> Lease | None:
        """Register a socket opened with the credential ``key_hash``.

        Returns None when ``limit`` sockets of that credential are already open here. ``check``
        answers whether the credential is still valid.
        """
        leases = self._leases[key_hash]
        if limit is not None and len(leases) >= limit:
            if not leases:
                del self._leases[key_hash]
            return None
        lease = Lease(key_hash, check)
        leases.add(lease)
        return lease

    @asynccontextmanager
    async def guarded(
        self, websocket: WebSocket, key_hash: str, limit: int | None, check: Check
    ) -> AsyncIterator[asyncio.Event | None]:
        """Hold a lease for an authenticated socket while it is served.

        Yields the event a revocation sets, or None when the socket was closed instead: with
        1013 when the key has ``limit`` sockets open already, with 1008 when the credential was
        revoked between the handshake and the lease.
        """
        lease = self.open(key_hash, limit, check)
        if lease is None:
            await websocket.close(
                code=status.WS_1013_TRY_AGAIN_LATER, reason="too many connections for this key"
            )
            yield None
            return
        try:
            # A revocation committed before the lease existed was published before it, too.
            if not await check():
                await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason="unauthorized")
                yield None
                return
            yield lease.revoked
        finally:
            self.close(lease)

    def close(self, lease: Lease) -> None:
        leases = self._leases.get(lease.key_hash)
        if leases is None:
            return
        leases.discard(lease)
        if not leases:
            del self._leases[lease.key_hash]

    def count(self, key_hash: str) -> int:
        return len(self._leases.get(key_hash, ()))

    def revoke_local(self, key_hash: str) -> int:
        """Signal this instance's sockets of ``key_hash`` to close; return how many."""
        leases = tuple(self._leases.get(key_hash, ()))
        for lease in leases:
            lease.revoked.set()
        return len(leases)

    async def revoke(self, key_hash: str) -> None:
        """Close the credential's sockets here at once, then on every other instance."""
        closed = self.revoke_local(key_hash)
        log.info("credential_revoked", local_sockets=closed)
        await self._redis.publish(REVOCATION_CHANNEL, key_hash)

    async def _pump(self, backoff: Backoff) -> None:
        await self._pubsub.subscribe(REVOCATION_CHANNEL)
        backoff.reset()
        self.listening.set()
        try:
            await self._recheck_all()
            while True:
                message = await self._pubsub.get_message(timeout=1.0)
                if message is None or message.get("type") != "message":
                    continue
                data = message["data"]
                self.revoke_local(data.decode() if isinstance(data, bytes) else str(data))
        finally:
            self.listening.clear()

    async def _recheck_all(self) -> None:
        for leases in tuple(self._leases.values()):
            for lease in tuple(leases):
                try:
                    valid = await lease.check()
                except Exception as exc:  # keep the socket; the next resubscription asks again
                    log.warning("credential_recheck_failed", error=repr(exc))
                    continue
                if not valid:
                    lease.revoked.set()
