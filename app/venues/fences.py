"""Whether accounts are fenced off (their DELETE under way), asked for many accounts at once.

An executor asks just before it sends each order (DELETE's promise: nothing is placed once it
answered). A fill fans out to every follower's executor in the same turn of the event loop, so
the checks are gathered: every check asked while no round trip is under way, or while one is,
goes out together in the next round trip (one MGET; on a cluster, one per slot, pipelined per
node). Each check is thus answered by a read made after it was asked, as a round trip of its
own would be.
"""

from __future__ import annotations

import asyncio
from uuid import UUID

from redis.asyncio.cluster import RedisCluster

from app.dispatch.keys import exec_fence
from app.redisconn import AnyRedis


class FenceChecks:
    def __init__(self, redis: AnyRedis) -> None:
        self._redis = redis
        self._asked: dict[str, list[asyncio.Future[bool]]] = {}
        self._sender: asyncio.Task[None] | None = None

    async def fenced(self, follower_id: UUID | str) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._asked.setdefault(exec_fence(follower_id), []).append(future)
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send())
        return await future

    async def _send(self) -> None:
        asked: dict[str, list[asyncio.Future[bool]]] = {}
        try:
            while self._asked:
                asked, self._asked = self._asked, {}
                keys = list(asked)
                try:
                    if isinstance(self._redis, RedisCluster):
                        values = await self._redis.mget_nonatomic(keys)
                    else:
                        values = await self._redis.mget(keys)
                except Exception as exc:
                    _answer(asked, exc)
                    continue
                for key, value in zip(keys, values, strict=True):
                    for future in asked[key]:
                        if not future.done():
                            future.set_result(value is not None)
        finally:
            # Cancelled (the instance stops): nobody is left waiting for an answer.
            _answer(asked, None)
            _answer(self._asked, None)
            self._asked = {}


def _answer(asked: dict[str, list[asyncio.Future[bool]]], exc: Exception | None) -> None:
    """Fail the checks not answered yet with ``exc``, or cancel them."""
    for futures in asked.values():
        for future in futures:
            if future.done():
                continue
            if exc is None:
                future.cancel()
            else:
                future.set_exception(exc)
