"""Many streams of one group read by a few blocking XREADGROUPs, not one read per stream.

The streams are split in shards of ``shard_size``, each read by its own loop blocking in one
XREADGROUP at a time on its own connection. Redis registers and unregisters every stream a
blocking read names in one go, running nothing else meanwhile, so a read naming tens of
thousands of streams holds every other client up: shards keep each read short. A shard's
read blocks for long, and a change of its streams ends it early (CLIENT UNBLOCK) so that the
next read names them. On a cluster one read may only name streams of one slot: a
non-blocking read per slot group, pipelined per node, and a pause when all were empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from functools import partial

import structlog
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ResponseError

from app.consumer_group.core import Entry, GroupCore, pairs
from app.loops import Backoff, SupervisedTask
from app.redisconn import bulk, by_slot, command, raw_connection, read_replies

log = structlog.get_logger(__name__)

# Streams named by one blocking read.
READ_SHARD = 1000
# On a cluster, reads do not block: the longest pause between two polls.
CLUSTER_POLL_MAX_S = 1.0
# The shortest block of a read (Redis takes 0 as "forever").
MIN_BLOCK_MS = 10
_CLIENT_ID = command(b"CLIENT", b"ID")

BatchHandler = Callable[[list[Entry]], Awaitable[None]]
LostHandler = Callable[[list[str]], Awaitable[None]]


class ReadShard:
    """Some of the streams, read by one blocking XREADGROUP at a time."""

    def __init__(self) -> None:
        self.keys: list[bytes] = []
        # The STREAMS part of the read (its argument count and its encoding), made once per
        # change of the keys; the block time varies per read.
        self.argument: tuple[int, bytes] | None = None
        # Moves whenever keys change: a read sent before a move is ended at once.
        self.generation = 0
        # The CLIENT ID of the connection blocked in the read, while it is.
        self.blocked: int | None = None
        # Its loop has run before: a restart makes the groups again.
        self.restarted = False
        # Set when the shard has streams again after it had none.
        self.filled = asyncio.Event()

    def change(self, keys: list[bytes]) -> None:
        self.keys = keys
        self.argument = None
        self.generation += 1
        if keys:
            self.filled.set()
        else:
            self.filled.clear()

    def streams_argument(self) -> tuple[int, bytes]:
        if self.argument is None:
            arguments = (b"STREAMS", *self.keys, *[b">"] * len(self.keys))
            self.argument = (len(arguments), b"".join(bulk(a) for a in arguments))
        return self.argument


class SharedReads:
    """The streams given to :meth:`add`, read with ``core``'s group; each batch read goes to
    ``on_batch``, which settles (acknowledges) its entries itself, now or later.

    A read that fails for a missing group (Redis lost it, or a stream's group was removed on
    purpose) makes the shard's groups again; streams that ``fence`` says are fenced off are
    not made again but dropped from the reads, and given to ``on_lost``.
    """

    def __init__(
        self,
        core: GroupCore,
        name: str,
        on_batch: BatchHandler,
        shard_size: int = READ_SHARD,
        fence: Callable[[str], str] | None = None,
        on_lost: LostHandler | None = None,
        backoff: tuple[float, float] = (0.2, 10.0),
    ) -> None:
        self.core = core
        self._name = name
        self._on_batch = on_batch
        self._shard_size = shard_size
        self._fence = fence
        self._on_lost = on_lost
        self._backoff = backoff
        self.shards: list[ReadShard] = []
        self._where: dict[bytes, ReadShard] = {}
        self._readers: list[SupervisedTask] = []
        self._running = False
        # On a cluster, where reads do not block: set when streams are added.
        self._added = asyncio.Event()
        if isinstance(core.redis, RedisCluster):
            self._readers.append(self._task(partial(self._cluster_loop, core.redis)))

    def _task(self, body: Callable[[Backoff], Awaitable[None]]) -> SupervisedTask:
        return SupervisedTask(self._name, body, Backoff(*self._backoff))

    def start(self) -> None:
        self._running = True
        for reader in self._readers:
            reader.start()

    async def stop(self) -> None:
        self._running = False
        for reader in self._readers:
            await reader.stop()

    def __contains__(self, stream: str) -> bool:
        return stream.encode() in self._where

    @property
    def streams(self) -> list[str]:
        return [key.decode() for key in self._where]

    async def add(self, streams: list[str]) -> None:
        """Read ``streams`` (their groups made already) from the next read on."""
        keys = [key for s in streams if (key := s.encode()) not in self._where]
        if not keys:
            return
        grown: set[ReadShard] = set()
        for key in keys:
            shard = next((s for s in self.shards if len(s.keys) < self._shard_size), None)
            if shard is None:
                shard = ReadShard()
                self.shards.append(shard)
                if not isinstance(self.core.redis, RedisCluster):
                    reader = self._task(partial(self._shard_loop, shard))
                    self._readers.append(reader)
                    if self._running:
                        reader.start()
            shard.keys.append(key)
            self._where[key] = shard
            grown.add(shard)
        for shard in grown:
            shard.change(shard.keys)
        await self._interrupt(grown)

    async def remove(self, streams: list[str]) -> None:
        """Stop reading ``streams``; an entry a read under way brings of them stays pending."""
        shrunk: set[ReadShard] = set()
        for stream in streams:
            shard = self._where.pop(stream.encode(), None)
            if shard is not None:
                shrunk.add(shard)
        for shard in shrunk:
            shard.change([key for key in shard.keys if self._where.get(key) is shard])
        await self._interrupt(shrunk)

    async def _interrupt(self, shards: set[ReadShard]) -> None:
        """End the reads under way of ``shards`` (on a cluster: the pause between polls)."""
        self._added.set()
        for shard in shards:
            if shard.blocked is not None:
                await self.core.redis.client_unblock(shard.blocked)

    async def _shard_loop(self, shard: ReadShard, backoff: Backoff) -> None:
        if shard.restarted:  # a Redis restarted empty has lost the groups
            await self._recover(shard)
        shard.restarted = True
        block_ms = self.core.config.block_ms
        while True:
            if not shard.keys:
                await shard.filled.wait()
            # Each read blocks for up to a quarter less than the block time, at random, so
            # that the shards' reads time out spread over it rather than all together.
            try:
                await self.read_once(shard, block_ms - random.randint(0, block_ms // 4))
            except ResponseError as exc:
                if "NOGROUP" not in str(exc) and "UNBLOCKED" not in str(exc):
                    raise
                await self._recover(shard)  # raises when a group cannot be made
            backoff.reset()

    async def _recover(self, shard: ReadShard) -> None:
        """Make the shard's groups again, but drop the fenced streams."""
        streams = [key.decode() for key in shard.keys]
        fenced = await self.core.create_groups(streams, self._fence)
        if fenced:
            log.info("streams_fenced_off", reader=self._name, streams=len(fenced))
            await self.remove(fenced)
            if self._on_lost is not None:
                await self._on_lost(fenced)

    async def read_once(self, shard: ReadShard, block_ms: int | None = None) -> int:
        """Read one batch of new entries of ``shard``'s streams and hand it on; return its
        size. Blocks up to ``block_ms`` (default: the group's) while there are none."""
        redis = self.core.redis
        assert isinstance(redis, Redis)
        if not shard.keys:  # emptied meanwhile: a read must name a stream
            return 0
        config = self.core.config
        block = max(MIN_BLOCK_MS, config.block_ms if block_ms is None else block_ms)
        generation = shard.generation
        head = (
            b"XREADGROUP", b"GROUP", config.group.encode(), config.consumer.encode(),
            b"COUNT", b"%d" % config.batch, b"BLOCK", b"%d" % block,
        )  # fmt: skip
        count, names = shard.streams_argument()
        read = b"*%d\r\n" % (len(head) + count) + b"".join(bulk(a) for a in head) + names
        async with raw_connection(redis) as conn:
            read_at = time.monotonic()
            # CLIENT ID goes with the read: Redis runs the two back to back, so once its
            # answer is here the read is registered and CLIENT UNBLOCK can end it.
            await conn.send_packed_command(_CLIENT_ID + read)
            shard.blocked = await conn.read_response()
            try:
                if shard.generation != generation:
                    # Streams changed while the read went out: it does not name them.
                    await redis.client_unblock(shard.blocked)
                (reply,) = await read_replies(conn, 1)
            finally:
                shard.blocked = None
        # {stream: [[entry id, [field, value, ...]], ...]} (RESP3; RESP2 has [stream, entries]
        # pairs), nil when nothing came.
        streams = reply.items() if isinstance(reply, dict) else reply or ()
        batch = [
            Entry(key.decode(), entry_id, pairs(fields), 1, read_at)
            for key, entries in streams
            for entry_id, fields in entries
        ]
        if batch:
            await self._on_batch(batch)
        return len(batch)

    async def _cluster_loop(self, cluster: RedisCluster, backoff: Backoff) -> None:
        block_s = self.core.config.block_ms / 1000
        while True:
            self._added.clear()  # whatever is added from here on is read next time round
            if not self._where or not await self._read_cluster(cluster):
                await self.pause(min(block_s, CLUSTER_POLL_MAX_S) if self._where else block_s)
            backoff.reset()

    async def _read_cluster(self, cluster: RedisCluster) -> int:
        config = self.core.config
        # One read per slot group, pipelined (per node) rather than one round trip each.
        read_at = time.monotonic()
        async with cluster.pipeline(transaction=False) as pipe:
            for group in by_slot(self.streams):
                pipe.xreadgroup(
                    config.group, config.consumer, dict.fromkeys(group, ">"), count=config.batch
                )
            results = await pipe.execute()
        batch = [
            Entry(key.decode(), entry_id, fields, 1, read_at)
            for result in results
            if result
            for key, entries in result
            for entry_id, fields in entries
        ]
        if batch:
            await self._on_batch(batch)
        return len(batch)

    async def pause(self, pause_s: float) -> None:
        """Wait ``pause_s``, or until streams are added."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._added.wait(), pause_s)
