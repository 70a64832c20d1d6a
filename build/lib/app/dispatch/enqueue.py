"""Idempotent enqueue: a Lua script checks each order id, XADDs and publishes atomically.

A fill fanned out to thousands of followers is a few script calls of up to CHUNK orders each,
written to one connection as a single pre-encoded buffer (one round trip); building a client
pipeline command by command, and reading a reply per order, cost far more.

Each call touches the keys of many followers, so it needs one Redis, not a Cluster: with a
Cluster the chunks would have to be grouped by hash slot.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from redis.asyncio import Redis
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


@dataclass(frozen=True, slots=True)
class OutboxItem:
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


class Enqueuer:
    def __init__(self, redis: Redis, dedupe_ttl_s: int) -> None:
        self.redis = redis
        self.ttl = str(dedupe_ttl_s).encode()
        # Redis names a script by its SHA-1: EVALSHA saves sending the body every time.
        self._sha = hashlib.sha1(_ENQUEUE_LUA.encode()).hexdigest().encode()

    async def enqueue(self, items: Sequence[OutboxItem]) -> list[str]:
        """Send ``items`` in one round trip; return the ids now known to be in their streams.

        Skipped orders only go to the feed. An order id seen before is confirmed without a
        second stream entry, so callers may retry freely, and so does this method when Redis
        has lost its script cache (a restart).
        """
        if not items:
            return []
        buffer, sendable, replies = self._encode(items)
        try:
            await self._send(buffer, replies)
        except NoScriptError:
            await self.redis.script_load(_ENQUEUE_LUA)
            await self._send(buffer, replies)
        return sendable

    def _encode(self, items: Sequence[OutboxItem]) -> tuple[bytes, list[str], int]:
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
            channel = feed_channel(item.follower_id).encode()
            if item.skipped:
                message = feed_message(item.payload, "skipped", item.skip_reason)
                parts.append(_command(b"PUBLISH", channel, message.encode()))
                replies += 1
                continue
            chunk_keys.append(order_stream(item.follower_id).encode())
            chunk_keys.append(dedupe_key(item.follower_id, item.order_id).encode())
            chunk_args.append(item.payload.encode())
            chunk_args.append(channel)
            sendable.append(item.order_id)
            if len(sendable) % CHUNK == 0:
                flush()
        flush()
        return b"".join(parts), sendable, replies

    async def _send(self, buffer: bytes, replies: int) -> None:
        """Write every command at once, then read every reply, on one pooled connection."""
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
