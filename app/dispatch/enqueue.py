"""Idempotent enqueue: a Lua script checks each order id, XADDs and publishes atomically.

A fill fanned out to thousands of followers is a few script calls of up to CHUNK orders each,
written to one connection as a single pre-encoded buffer (one round trip); building a client
pipeline command by command, and reading a reply per order, cost far more.

On one Redis, a script call may touch many followers' keys. On a Redis Cluster it may touch
one slot only: ``cluster=True`` groups the orders by the slot of their follower's hash tag
(``{follower_id}``: a follower's stream, dedupe keys and feed channel share it), one script
call per slot, pipelined per node by the cluster client.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import NoScriptError, ResponseError

from app.dispatch.keys import dedupe_key, feed_channel, order_stream
from app.dispatch.messages import feed_message

# For each order i: KEYS[2i-1] its stream, KEYS[2i] its dedupe marker; ARGV[1] the dedupe TTL,
# then per order its payload and feed channel. An order id seen before is skipped: nothing is
# added twice, however often a batch is resent. The feed message is built here from the
# payload, so the payload crosses the wire once. Returns how many entries were added.
_ENQUEUE_LUA = """
local added = 0
for i = 1, #KEYS / 2 do
  local payload = ARGV[2 * i]
  if redis.call('SET', KEYS[2 * i], '1', 'NX', 'EX', ARGV[1]) then
    redis.call('XADD', KEYS[2 * i - 1], '*', 'order', payload)
    redis.call('PUBLISH', ARGV[2 * i + 1],
      '{"type":"order","status":"dispatched","skip_reason":null,"order":' .. payload .. '}')
    added = added + 1
  end
end
return added
"""
# Orders per script call: big enough that a fan-out is a handful of replies, small enough that
# one call does not hold Redis for long (each order is three commands inside the script).
CHUNK = 500


class Sendable(Protocol):
    """What the enqueue reads of an order: the sizing engine's own orders are sent as they
    are, without a copy per order."""

    @property
    def order_id(self) -> str: ...
    @property
    def follower_id(self) -> UUID: ...
    @property
    def payload(self) -> str: ...
    @property
    def skip_reason(self) -> str | None: ...
    @property
    def skipped(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """An order read back from the outbox (the relay's)."""

    order_id: str
    follower_id: UUID
    payload: str
    skip_reason: str | None = None
    skipped: bool = False


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


def _command(*args: bytes) -> bytes:
    """One command in RESP, the protocol's own framing."""
    return b"*%d\r\n" % len(args) + b"".join(_bulk(arg) for arg in args)


def slot_batches(items: Sequence[Sendable]) -> list[list[Sendable]]:
    """Orders to send grouped so that each group's keys live in one cluster slot, at most
    CHUNK per group, in first-seen order."""
    by_slot: dict[int, list[Sendable]] = {}
    for item in items:
        if not item.skipped:
            by_slot.setdefault(key_slot(order_stream(item.follower_id).encode()), []).append(item)
    return [group[i : i + CHUNK] for group in by_slot.values() for i in range(0, len(group), CHUNK)]


class Enqueuer:
    def __init__(self, redis: Redis | RedisCluster, dedupe_ttl_s: int) -> None:
        self.redis = redis
        self.cluster = isinstance(redis, RedisCluster)
        self.ttl = str(dedupe_ttl_s).encode()
        # Redis names a script by its SHA-1: EVALSHA saves sending the body every time.
        self._sha = hashlib.sha1(_ENQUEUE_LUA.encode()).hexdigest().encode()

    async def enqueue(self, items: Sequence[Sendable]) -> list[str]:
        """Send ``items`` in one round trip; return the ids now known to be in their streams.

        Skipped orders only go to the feed. An order id seen before is confirmed without a
        second stream entry, so callers may retry freely, and so does this method when Redis
        has lost its script cache (a restart).
        """
        if not items:
            return []
        if isinstance(self.redis, RedisCluster):
            return await self._enqueue_cluster(self.redis, items)
        buffer, sendable, replies = self._encode(items)
        try:
            await self._send(buffer, replies)
        except NoScriptError:
            await self.redis.script_load(_ENQUEUE_LUA)
            await self._send(buffer, replies)
        return sendable

    async def _enqueue_cluster(self, cluster: RedisCluster, items: Sequence[Sendable]) -> list[str]:
        """One script call per slot group, pipelined (the client sends one batch per node)."""
        batches = slot_batches(items)
        for attempt in (1, 2):
            pipe = cluster.pipeline(transaction=False)
            for batch in batches:
                keys: list[bytes] = []
                args: list[bytes] = []
                for item in batch:
                    keys += [
                        order_stream(item.follower_id).encode(),
                        dedupe_key(item.follower_id, item.order_id).encode(),
                    ]
                    args += [item.payload.encode(), feed_channel(item.follower_id).encode()]
                pipe.execute_command("EVALSHA", self._sha, len(keys), *keys, self.ttl, *args)
            for item in items:
                if item.skipped:
                    message = feed_message(item.payload, "skipped", item.skip_reason)
                    pipe.publish(feed_channel(item.follower_id).encode(), message.encode())
            try:
                await pipe.execute()
                break
            except NoScriptError:
                if attempt == 2:
                    raise
                # A node restarted or failed over: load the script on every primary.
                await cluster.script_load(_ENQUEUE_LUA)
        return [item.order_id for batch in batches for item in batch]

    def _encode(self, items: Sequence[Sendable]) -> tuple[bytes, list[str], int]:
        """RESP for the whole batch: one PUBLISH per skipped order, one EVALSHA per chunk of
        orders to send. Returns the buffer, the ids sent and how many replies to read."""
        parts: list[bytes] = []
        sendable: list[str] = []
        chunk_keys: list[bytes] = []
        chunk_args: list[bytes] = []
        replies = 0

        def flush() -> None:
            nonlocal replies
            if chunk_keys:
                parts.append(
                    _command(
                        b"EVALSHA",
                        self._sha,
                        str(len(chunk_keys)).encode(),
                        *chunk_keys,
                        self.ttl,
                        *chunk_args,
                    )
                )
                chunk_keys.clear()
                chunk_args.clear()
                replies += 1

        for item in items:
            follower = str(item.follower_id)  # once: a UUID formats itself in Python code
            channel = feed_channel(follower).encode()
            if item.skipped:
                message = feed_message(item.payload, "skipped", item.skip_reason)
                parts.append(_command(b"PUBLISH", channel, message.encode()))
                replies += 1
                continue
            chunk_keys.append(order_stream(follower).encode())
            chunk_keys.append(dedupe_key(follower, item.order_id).encode())
            chunk_args.append(item.payload.encode())
            chunk_args.append(channel)
            sendable.append(item.order_id)
            if len(sendable) % CHUNK == 0:
                flush()
        flush()
        return b"".join(parts), sendable, replies

    async def _send(self, buffer: bytes, replies: int) -> None:
        """Write every command at once, then read every reply, on one pooled connection."""
        assert isinstance(self.redis, Redis)
        pool = self.redis.connection_pool
        conn: Any = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            await conn.send_packed_command(buffer)
            error: ResponseError | None = None
            for _ in range(replies):
                try:
                    await conn.read_response()
                except ResponseError as exc:  # keep reading: the connection stays in step
                    error = error or exc
            if error is not None:
                raise error
        except BaseException as exc:
            if not isinstance(exc, ResponseError):
                # Cancelled or broken mid-way: replies may still be in flight on this socket,
                # so it must not go back to the pool as it is.
                await conn.disconnect()
            raise
        finally:
            await pool.release(conn)
