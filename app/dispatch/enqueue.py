"""Enqueue: each order XADDed to its follower's stream once, and published to its feed.

A fill's orders are sent in buckets, a bucket being a deterministic function of the order
alone (the first character of its id's hash on one Redis, its stream's cluster slot on a
Cluster), never of which other orders are sent with it. One Lua script call carries whole
buckets: per bucket it checks the bucket's sent marker (``keys.sent_marker``), and if absent
XADDs and PUBLISHes every order of the bucket, then sets the marker. A script runs atomically,
so "marker present" is "every order of the bucket is in its stream": a resend (the outbox
relay, a retry, a second relay) finds the marker and adds nothing, and the first send pays
an EXISTS and a SET per bucket rather than a check per order. The relay rebuilds the same
buckets from the order rows (it names the fill the same way, ``domain.ids.fill_key``), and
sends only the orders no executor has reported on yet.

A marker lives ``dedupe_ttl_s``: within that time of the first send a resend adds nothing.

Calls are written to one connection chunk by chunk, each chunk encoded while Redis runs the
one before, and the replies read at the end (one round trip): building a client pipeline
command by command, and reading a reply per order, cost far more.

On a Redis Cluster one script call may touch one slot only: ``cluster=True`` makes each
(fill, slot) a bucket, one script call per bucket, pipelined per node by the cluster client;
the marker's hash tag is one that hashes to that slot.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import NoScriptError

from app.dispatch.keys import feed_channel, order_stream, sent_marker, slot_sent_marker
from app.executors.protocol.messages import feed_message
from app.redisconn import bulk, raw_connection, read_replies

# KEYS: per bucket its sent marker, then the streams of its orders. ARGV[1]: the markers' TTL
# in seconds; then per bucket how many orders it has, and per order its payload and its feed
# channel. A bucket whose marker exists was sent whole before: skipped. The feed gets the
# bare payload (the feed hub wraps it for its sockets: building a message per order here
# would be Lua string work on every order). Returns how many orders were added.
_ENQUEUE_LUA = """
local added = 0
local k, a = 1, 2
while k <= #KEYS do
  local n = tonumber(ARGV[a])
  if redis.call('EXISTS', KEYS[k]) == 0 then
    for i = 1, n do
      local payload = ARGV[a + 2 * i - 1]
      redis.call('XADD', KEYS[k + i], '*', 'order', payload)
      redis.call('PUBLISH', ARGV[a + 2 * i], payload)
    end
    redis.call('SET', KEYS[k], '1', 'EX', ARGV[1])
    added = added + n
  end
  k = k + n + 1
  a = a + 2 * n + 1
end
return added
"""
# Orders per script call, in whole buckets: big enough that a fan-out is a handful of
# replies, small enough that one call does not hold Redis for long.
CHUNK = 500
# Followers whose encoded key names are kept (about 200 bytes each).
_KEY_CACHE_LIMIT = 100_000


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
    @property
    def fill_key(self) -> str: ...


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """An order read back from the outbox (the relay's)."""

    order_id: str
    follower_id: UUID
    payload: str
    fill_key: str
    skip_reason: str | None = None
    skipped: bool = False


def buckets(items: Sequence[Sendable]) -> dict[tuple[str, str], list[Sendable]]:
    """The orders to send (not skipped) by (fill key, bucket), in first-seen order. An
    order's bucket is the first character of its id's hash (``domain.ids``: "ct", then
    base64): one of 64, evenly spread, and known from the order alone."""
    by_bucket: dict[tuple[str, str], list[Sendable]] = {}
    for item in items:
        if not item.skipped:
            key = (item.fill_key, item.order_id[2:3])
            group = by_bucket.get(key)
            if group is None:
                by_bucket[key] = [item]
            else:
                group.append(item)
    return by_bucket


def slot_buckets(items: Sequence[Sendable]) -> dict[tuple[str, int], list[Sendable]]:
    """The orders to send (not skipped) by (fill key, cluster slot of their stream)."""
    by_slot: dict[tuple[str, int], list[Sendable]] = {}
    for item in items:
        if not item.skipped:
            slot = key_slot(order_stream(item.follower_id).encode())
            by_slot.setdefault((item.fill_key, slot), []).append(item)
    return by_slot


@dataclass(frozen=True, slots=True)
class Prepared:
    """Some orders' commands in RESP, ready to write (``Enqueuer.prepare``)."""

    commands: tuple[bytes, ...]  # one per script call, then the skipped orders' PUBLISHes
    replies: int
    sent: list[str]  # the ids the script calls carry


@dataclass(frozen=True, slots=True)
class _FollowerKeys:
    """A follower's key names, as RESP bulk strings and as text."""

    stream: bytes
    channel: bytes
    names: tuple[str, str]


class Enqueuer:
    def __init__(self, redis: Redis | RedisCluster, dedupe_ttl_s: int) -> None:
        self.redis = redis
        self.cluster = isinstance(redis, RedisCluster)
        if self.cluster:
            # The markers' slot tags, found now rather than within a fill's dispatch timeout.
            slot_sent_marker("", 0)
        self.ttl = str(dedupe_ttl_s).encode()
        self._bulk_ttl = bulk(self.ttl)
        self._keys: dict[UUID, _FollowerKeys] = {}
        # Redis names a script by its SHA-1: EVALSHA saves sending the body every time.
        self._sha = hashlib.sha1(_ENQUEUE_LUA.encode()).hexdigest().encode()

    def _follower_keys(self, follower_id: UUID) -> _FollowerKeys:
        keys = self._keys.get(follower_id)
        if keys is None:
            if len(self._keys) >= _KEY_CACHE_LIMIT:
                self._keys.clear()
            follower = str(follower_id)
            names = (order_stream(follower), feed_channel(follower))
            keys = self._keys[follower_id] = _FollowerKeys(
                bulk(names[0].encode()), bulk(names[1].encode()), names
            )
        return keys

    async def enqueue(self, items: Sequence[Sendable]) -> list[str]:
        """Send ``items`` in one round trip; return the ids now known to be in their streams.

        Skipped orders only go to the feed. A bucket sent before is confirmed without a
        second stream entry, so callers may retry freely, and so does this method when Redis
        has lost its script cache (a restart).
        """
        if not items:
            return []
        if isinstance(self.redis, RedisCluster):
            return await self._enqueue_cluster(self.redis, items)
        try:
            return await self._send(items)
        except NoScriptError:
            await self.redis.script_load(_ENQUEUE_LUA)
            return await self._send(items)

    async def _enqueue_cluster(self, cluster: RedisCluster, items: Sequence[Sendable]) -> list[str]:
        """One script call per (fill, slot) bucket, pipelined (one batch per node)."""
        groups = slot_buckets(items)
        for attempt in (1, 2):
            pipe = cluster.pipeline(transaction=False)
            for (key, slot), batch in groups.items():
                keys: list[str] = [slot_sent_marker(key, slot)]
                args: list[bytes] = [self.ttl, b"%d" % len(batch)]
                for item in batch:
                    stream, channel = self._follower_keys(item.follower_id).names
                    keys.append(stream)
                    args += [item.payload.encode(), channel.encode()]
                pipe.execute_command("EVALSHA", self._sha, len(keys), *keys, *args)
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
        return [item.order_id for batch in groups.values() for item in batch]

    def _calls(self, items: Sequence[Sendable]) -> list[list[tuple[bytes, list[Sendable]]]]:
        """The buckets to send, packed whole into script calls of about CHUNK orders: per
        call, its buckets' markers (RESP) and orders."""
        calls: list[list[tuple[bytes, list[Sendable]]]] = []
        call: list[tuple[bytes, list[Sendable]]] = []
        size = 0
        for (key, bucket), orders in buckets(items).items():
            if call and size + len(orders) > CHUNK:
                calls.append(call)
                call, size = [], 0
            call.append((bulk(sent_marker(key, bucket).encode()), orders))
            size += len(orders)
        if call:
            calls.append(call)
        return calls

    def _encode_call(self, call: list[tuple[bytes, list[Sendable]]]) -> bytes:
        """RESP of one script call."""
        keys: list[bytes] = []
        args: list[bytes] = []
        for marker, orders in call:
            keys.append(marker)
            args.append(bulk(b"%d" % len(orders)))
            for item in orders:
                follower = self._follower_keys(item.follower_id)
                keys.append(follower.stream)
                args += (bulk(item.payload.encode()), follower.channel)
        return b"*%d\r\n$7\r\nEVALSHA\r\n%s%s%s%s%s" % (
            4 + len(keys) + len(args),
            bulk(self._sha),
            bulk(b"%d" % len(keys)),
            b"".join(keys),
            self._bulk_ttl,
            b"".join(args),
        )

    def _encode_skipped(self, items: Sequence[Sendable]) -> list[bytes]:
        """One PUBLISH per skipped order: the feed shows it, no executor gets it."""
        return [
            b"*3\r\n$7\r\nPUBLISH\r\n%s%s"
            % (
                self._follower_keys(item.follower_id).channel,
                bulk(feed_message(item.payload, "skipped", item.skip_reason).encode()),
            )
            for item in items
            if item.skipped
        ]

    def prepare(self, items: Sequence[Sendable]) -> Prepared | None:
        """Encode ``items``' commands without sending them: the sizing engine does it while
        Postgres commits them, and ``send`` writes them once committed. None on a Cluster,
        whose client encodes as it routes."""
        if self.cluster:
            return None
        calls = self._calls(items)
        skipped = self._encode_skipped(items)
        commands = [self._encode_call(call) for call in calls]
        if skipped:
            commands.append(b"".join(skipped))
        sent = [item.order_id for call in calls for _, orders in call for item in orders]
        return Prepared(tuple(commands), len(calls) + len(skipped), sent)

    async def send(self, prepared: Prepared) -> list[str]:
        """Write what ``prepare`` encoded; return the ids now known to be in their streams
        (as ``enqueue``)."""
        assert isinstance(self.redis, Redis)
        try:
            await self._write(prepared.commands, prepared.replies)
        except NoScriptError:
            await self.redis.script_load(_ENQUEUE_LUA)
            await self._write(prepared.commands, prepared.replies)
        return prepared.sent

    async def _write(self, commands: Sequence[bytes], replies: int) -> None:
        """Write ``commands`` and read their ``replies``, on one pooled connection."""
        assert isinstance(self.redis, Redis)
        async with raw_connection(self.redis) as conn:
            await conn.send_packed_command(list(commands), check_health=True)
            await read_replies(conn, replies)

    async def _send(self, items: Sequence[Sendable]) -> list[str]:
        """Write the script calls one at a time, encoding the next while Redis runs the last,
        then read every reply, on one pooled connection."""
        assert isinstance(self.redis, Redis)
        calls = self._calls(items)
        skipped = self._encode_skipped(items)
        async with raw_connection(self.redis) as conn:
            first = True
            for call in calls:
                await conn.send_packed_command(self._encode_call(call), check_health=first)
                first = False
            if skipped:
                await conn.send_packed_command(b"".join(skipped), check_health=first)
            await read_replies(conn, len(calls) + len(skipped))
        return [item.order_id for call in calls for _, orders in call for item in orders]
