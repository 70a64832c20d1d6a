"""Idempotent enqueue: one Lua call per order checks the id, XADDs and publishes atomically."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from app.dispatch.keys import dedupe_key, feed_channel, order_stream
from app.dispatch.messages import feed_message

# KEYS[1] stream, KEYS[2] dedupe marker (same hash slot). ARGV: payload, ttl, channel, feed msg.
# Returns the new entry id, or false when this order id was enqueued before.
_ENQUEUE_LUA = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) then
  local id = redis.call('XADD', KEYS[1], '*', 'order', ARGV[1])
  redis.call('PUBLISH', ARGV[3], ARGV[4])
  return id
end
return false
"""


@dataclass(frozen=True, slots=True)
class OutboxItem:
    order_id: str
    follower_id: UUID
    payload: str
    skip_reason: str | None = None
    skipped: bool = False


class Enqueuer:
    def __init__(self, redis: Redis, dedupe_ttl_s: int) -> None:
        self.redis = redis
        self.ttl = dedupe_ttl_s
        # Redis names a script by its SHA-1: EVALSHA saves sending the body every time.
        self._sha = hashlib.sha1(_ENQUEUE_LUA.encode()).hexdigest()

    async def enqueue(self, items: Sequence[OutboxItem]) -> list[str]:
        """Send ``items`` in one round trip; return the ids now known to be in their streams.

        Skipped orders only go to the feed. An order id seen before is confirmed without a
        second stream entry, so callers may retry freely, and so does this method when Redis
        has lost its script cache (a restart).
        """
        if not items:
            return []
        try:
            return await self._send(items)
        except NoScriptError:
            await self.redis.script_load(_ENQUEUE_LUA)
            return await self._send(items)

    async def _send(self, items: Sequence[OutboxItem]) -> list[str]:
        sendable: list[str] = []
        async with self.redis.pipeline(transaction=False) as pipe:
            for item in items:
                channel = feed_channel(item.follower_id)
                if item.skipped:
                    pipe.publish(channel, feed_message(item.payload, "skipped", item.skip_reason))
                    continue
                pipe.evalsha(
                    self._sha,
                    2,
                    order_stream(item.follower_id),
                    dedupe_key(item.follower_id, item.order_id),
                    item.payload,
                    self.ttl,
                    channel,
                    feed_message(item.payload, "dispatched", None),
                )
                sendable.append(item.order_id)
            await pipe.execute()
        return sendable
