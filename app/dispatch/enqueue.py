"""Idempotent enqueue: one Lua call per order checks the id, XADDs and publishes atomically."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from redis.asyncio import Redis

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


class Enqueuer:
    def __init__(self, redis: Redis, dedupe_ttl_s: int) -> None:
        self.redis = redis
        self.ttl = dedupe_ttl_s
        self._script = redis.register_script(_ENQUEUE_LUA)

    async def enqueue(self, items: Sequence[OutboxItem]) -> list[str]:
        """Send ``items`` in one round trip; return the ids now known to be in their streams.

        Skipped orders only go to the feed. An order id seen before is confirmed without a
        second stream entry, so callers may retry freely.
        """
        if not items:
            return []
        sendable: list[str] = []
        async with self.redis.pipeline(transaction=False) as pipe:
            for item in items:
                channel = feed_channel(item.follower_id)
                if item.skip_reason is not None:
                    msg = feed_message(item.payload, "skipped", item.skip_reason)
                    pipe.publish(channel, msg)
                    continue
                msg = feed_message(item.payload, "dispatched", None)
                await self._script(
                    keys=[
                        order_stream(item.follower_id),
                        dedupe_key(item.follower_id, item.order_id),
                    ],
                    args=[item.payload, self.ttl, channel, msg],
                    client=pipe,
                )
                sendable.append(item.order_id)
            await pipe.execute()
        return sendable
