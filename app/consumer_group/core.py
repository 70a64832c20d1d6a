"""The one consumer-group core: how every reader of the service's Redis streams consumes them.

The report reader (``app.dispatch.report_reader``), the venue executors and the paper executor
(through ``app.executors.protocol.consumer``) all use it:

- groups are created up front, an existing group is no error;
- XREADGROUP with BLOCK and COUNT over many streams at once
  (``app.consumer_group.shared_read``);
- XACK only once the entry was handled (the caller's :meth:`GroupCore.settle`);
- entries left unacknowledged for ``claim_idle_ms`` (their consumer died or failed) are taken
  over with XAUTOCLAIM, with the number of times each was delivered;
- an entry delivered more than ``max_deliveries`` times goes to a dead-letter stream rather
  than to the handler again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import structlog
from redis.asyncio.cluster import RedisCluster

from app.redisconn import AnyRedis, Gathered

log = structlog.get_logger(__name__)

# Streams named per script call when groups are made or entries reclaimed.
SLICE = 1000
# KEYS: streams (and, with ARGV[3] = "1", each stream's fence key after it); ARGV: group,
# start id, fenced. Creates each stream's group unless it exists or the stream is fenced off;
# returns the fenced streams. Existing groups are the usual case after a restart: answered
# here, not as an error reply per stream that the client turns into an exception each.
_CREATE_LUA = """
local fenced = {}
local step = ARGV[3] == '1' and 2 or 1
for i = 1, #KEYS, step do
  local key = KEYS[i]
  if step == 2 and redis.call('EXISTS', KEYS[i + 1]) == 1 then
    fenced[#fenced + 1] = key
  else
    local reply = redis.pcall('XGROUP', 'CREATE', key, ARGV[1], ARGV[2], 'MKSTREAM')
    local err = type(reply) == 'table' and reply.err
    if err and not string.find(err, 'BUSYGROUP', 1, true) then
      return redis.error_reply(key .. ': ' .. err)
    end
  end
end
return fenced
"""
# KEYS: streams; ARGV: group, consumer, min idle ms, count. Returns [stream, entries, counts,
# ...] for the streams where entries were taken over (XPENDING first: nearly all have none; a
# stream whose group is gone is passed over). ``counts``: each entry's deliveries, the claim
# included.
_CLAIM_LUA = """
local claimed = {}
for _, key in ipairs(KEYS) do
  local summary = redis.pcall('XPENDING', key, ARGV[1])
  if type(summary) == 'table' and not summary.err and summary[1] > 0 then
    local result = redis.call('XAUTOCLAIM', key, ARGV[1], ARGV[2], ARGV[3], '0-0', 'COUNT', ARGV[4])
    if #result[2] > 0 then
      local counts = {}
      for i, entry in ipairs(result[2]) do
        local info = redis.call('XPENDING', key, ARGV[1], entry[1], entry[1], 1)
        counts[i] = info[1] and info[1][4] or 1
      end
      claimed[#claimed + 1] = key
      claimed[#claimed + 1] = result[2]
      claimed[#claimed + 1] = counts
    end
  end
end
return claimed
"""


@dataclass(frozen=True, slots=True)
class GroupConfig:
    group: str
    consumer: str
    block_ms: int = 2000  # keep below the client's socket timeout
    claim_idle_ms: int = 30_000
    # Past this many deliveries an entry is dead-lettered; None: never (its handling only
    # fails while something else is away, and it must wait for it).
    max_deliveries: int | None = 5
    batch: int = 100
    # Where a new group starts: "0" the whole stream, "$" only what is added from now on.
    start_id: str = "0"


class Entry(NamedTuple):
    """One stream entry as read: ``deliveries`` > 1 means a consumer had it before (it
    crashed, or its handler failed), so it may have been acted on already."""

    stream: str
    entry_id: bytes
    fields: dict[bytes, bytes]
    deliveries: int
    # When the read that delivered it was sent (``time.monotonic()``), before Redis delivered
    # it; 0.0 when unknown. The execute role's fence rests on it (``app.venues.executor``).
    read_at: float = 0.0


def pairs(fields: list[bytes] | None) -> dict[bytes, bytes]:
    """A stream entry's flat field list as a dict (None: an entry deleted since)."""
    return dict(zip(fields[::2], fields[1::2], strict=True)) if fields else {}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class GroupCore:
    """One consumer of one group, over any number of streams."""

    def __init__(
        self,
        redis: AnyRedis,
        config: GroupConfig,
        dead_letter: Callable[[str], str] | None = None,
    ) -> None:
        self.redis = redis
        self.config = config
        # The dead-letter stream of a stream (needed when ``max_deliveries`` is set).
        self._dead_letter = dead_letter
        self.dead = 0
        # Set for many consumers in one process (an instance's executors): their acks of a
        # turn of the event loop go in one round trip.
        self.gathered: Gathered | None = None
        self._create_script = redis.register_script(_CREATE_LUA)
        self._claim_script = redis.register_script(_CLAIM_LUA)

    async def create_groups(
        self, streams: list[str], fence: Callable[[str], str] | None = None
    ) -> list[str]:
        """Make the group of each of ``streams`` unless it exists, SLICE streams to a round
        trip. With ``fence`` (a stream's fence key), a fenced stream gets no group: return
        those."""
        fenced: list[str] = []
        for first in range(0, len(streams), SLICE):
            sliced = streams[first : first + SLICE]
            if isinstance(self.redis, RedisCluster):
                fenced += await self._create_cluster(self.redis, sliced, fence)
                continue
            keys = [k for s in sliced for k in ((s, fence(s)) if fence else (s,))]
            args = [self.config.group, self.config.start_id, "1" if fence else "0"]
            fenced += [_text(k) for k in await self._create_script(keys=keys, args=args)]
        return fenced

    async def _create_cluster(
        self, cluster: RedisCluster, streams: list[str], fence: Callable[[str], str] | None
    ) -> list[str]:
        # A script call per stream (a stream and its fence share a slot, streams do not), all
        # at once: a cluster pipeline refuses scripts.
        args = [self.config.group, self.config.start_id, "1" if fence else "0"]
        results = await asyncio.gather(
            *(
                self._create_script(keys=[s, fence(s)] if fence else [s], args=args)
                for s in streams
            ),
            return_exceptions=True,
        )
        fenced: list[str] = []
        for result in results:
            if isinstance(result, BaseException):
                raise result
            fenced += [_text(k) for k in result]
        return fenced

    async def read(self, streams: list[str], block_ms: int | None = None) -> list[Entry]:
        """New entries of ``streams`` (all in one slot on a cluster), blocking up to
        ``block_ms`` (None: not at all) while there are none."""
        response: Any = await self.redis.xreadgroup(
            self.config.group,
            self.config.consumer,
            dict.fromkeys(streams, ">"),
            count=self.config.batch,
            block=block_ms,
        )
        streams_read = response.items() if isinstance(response, dict) else response or ()
        return [
            Entry(_text(key), entry_id, fields, 1)
            for key, entries in streams_read
            for entry_id, fields in entries
        ]

    async def claim(self, streams: list[str]) -> list[Entry]:
        """Take over the entries of ``streams`` idle past ``claim_idle_ms``; return those to
        handle (the ones delivered too often are dead-lettered here)."""
        found: list[Entry] = []
        cfg = self.config
        for first in range(0, len(streams), SLICE):
            sliced = streams[first : first + SLICE]
            args: list[str | int] = [cfg.group, cfg.consumer, cfg.claim_idle_ms, cfg.batch]
            if isinstance(self.redis, RedisCluster):
                # A script call per stream, all at once: a cluster pipeline refuses scripts.
                each = await asyncio.gather(
                    *(self._claim_script(keys=[stream], args=args) for stream in sliced)
                )
                replies: list[Any] = [item for reply in each for item in reply]
            else:
                replies = await self._claim_script(keys=sliced, args=args)
            for key, entries, counts in zip(
                replies[::3], replies[1::3], replies[2::3], strict=True
            ):
                stream = _text(key)
                for (entry_id, fields), count in zip(entries, counts, strict=True):
                    if fields:  # an entry trimmed meanwhile has none
                        found.append(Entry(stream, entry_id, pairs(fields), max(int(count), 2)))
        keep: list[Entry] = []
        for entry in found:
            if cfg.max_deliveries is not None and entry.deliveries > cfg.max_deliveries:
                await self.settle({}, [(entry.stream, entry.entry_id, entry.fields)])
            else:
                keep.append(entry)
        return keep

    async def ack(self, stream: str, entry_id: bytes | str) -> None:
        if self.gathered is not None:
            await self.gathered.execute("XACK", stream, self.config.group, entry_id)
        else:
            await self.redis.xack(stream, self.config.group, entry_id)

    async def settle(
        self,
        acks: dict[str, list[bytes]],
        dead: list[tuple[str, bytes, dict[bytes, bytes]]],
    ) -> None:
        """Acknowledge ``acks``, and move ``dead`` (stream, entry id, fields to keep) to the
        dead-letter streams, acknowledged too; in one round trip."""
        if not acks and not dead:
            return
        group = self.config.group
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream, entry_id, fields in dead:
                if self._dead_letter is None:
                    raise ValueError(f"{stream}: no dead-letter stream configured")
                pipe.xadd(self._dead_letter(stream), fields)  # type: ignore[arg-type]
                pipe.xack(stream, group, entry_id)
            for stream, ids in acks.items():
                pipe.xack(stream, group, *ids)
            await pipe.execute()
        self.dead += len(dead)
        for stream, entry_id, _ in dead:
            log.warning("entry_dead_lettered", stream=stream, entry_id=_text(entry_id))
