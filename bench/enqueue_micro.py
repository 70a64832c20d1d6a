"""The enqueue alone: one fill's orders to N followers' existing streams, Redis time per order.

    python -m bench.enqueue_micro [--followers 10000] [--fills 10] [--payload-bytes 0]
                                  [--no-publish]

Sends ``--fills`` fills of one order per follower through ``Enqueuer.enqueue`` (then the same
again, as the relay's resend) and prints, per order: Redis's CPU time (INFO cpu, user + sys:
the figure to trust on a loaded machine), the time Redis spent in the script (INFO
commandstats, EVALSHA's usec: wall time inside Redis), the client's CPU time and the wall
time. INFO is server-wide: point COPYTRADE_BENCH_REDIS_URL at a Redis of its own (it is
flushed). ``--payload-bytes`` 0 sends real order messages (version 2 where the code has it,
else 890 bytes, version 1's size); another value, that many bytes. ``--no-publish`` runs the
script without its PUBLISH: what the feed costs Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import time
import uuid
from typing import Any

from redis.asyncio import Redis

from app.dispatch import enqueue
from app.domain.ids import FillOrderIds

REDIS_URL = os.environ.get("COPYTRADE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/6")


def _payload(fill_id: str, order_id: str, follower: str, size: int) -> str:
    if size:
        return "x" * size
    messages: Any = __import__("app.executors.protocol.messages", fromlist=["x"])
    fields = dict(
        order_id=order_id, follower_id=follower, leader_id=str(uuid.UUID(int=1)),
        subscription_id=str(uuid.UUID(int=2)), leader_fill_id=fill_id, symbol="BTCUSDT",
        side="buy", qty="0.012", reduce_only=False, limit_price=None, time_in_force=None,
        valid_until="2026-12-07T23:15:17.123456+00:00", leader_price="97000.5",
    )  # fmt: skip
    if hasattr(messages, "lean_order"):
        return str(messages.lean_order(order_type="market", **fields))
    return "y" * 890  # version 1's size


def _items(followers: list[uuid.UUID], fill_id: str, size: int) -> list[Any]:
    ids = FillOrderIds(uuid.UUID(int=1), fill_id)
    names = {f.name for f in dataclasses.fields(enqueue.OutboxItem)}
    items = []
    for follower in followers:
        oid = ids(str(follower))
        args: dict[str, Any] = {
            "order_id": oid,
            "follower_id": follower,
            "payload": _payload(fill_id, oid, str(follower), size),
        }
        if "fill_key" in names:
            args["fill_key"] = fill_id
        items.append(enqueue.OutboxItem(**args))
    return items


async def _script_usec(redis: Redis) -> tuple[int, int, float]:
    stats: dict[str, Any] = await redis.info("commandstats")
    evalsha = stats.get("cmdstat_evalsha", {})
    cpu: dict[str, Any] = await redis.info("cpu")
    used = float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])
    return int(evalsha.get("usec", 0)), int(evalsha.get("calls", 0)), used


async def run(followers_n: int, fills: int, size: int, publish: bool) -> None:
    if not publish:  # the script without its PUBLISH: what the feed costs Redis
        script = enqueue._ENQUEUE_LUA
        lines = [line for line in script.splitlines() if "'PUBLISH'" not in line]
        enqueue._ENQUEUE_LUA = "\n".join(lines)
    redis = Redis.from_url(REDIS_URL)
    await redis.flushdb()
    followers = [uuid.uuid4() for _ in range(followers_n)]
    enqueuer = enqueue.Enqueuer(redis, 604_800)
    # The streams exist already, as in service (each follower has had orders before).
    await enqueuer.enqueue(_items(followers, "warm-up", size))
    batches = [_items(followers, f"f-{n}", size) for n in range(fills)]
    print(f"payload {len(batches[0][0].payload)} bytes, {followers_n} followers, {fills} fills")
    for label in ("first send", "resend"):
        usec0, calls0, used0 = await _script_usec(redis)
        cpu, wall = time.process_time(), time.perf_counter()
        for items in batches:
            await enqueuer.enqueue(items)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        usec, calls, used = await _script_usec(redis)
        usec, calls, used = usec - usec0, calls - calls0, used - used0
        n = followers_n * fills
        print(
            f"  {label:10}  Redis CPU {used / n * 1e6:5.2f} us/order"
            f"  script {usec / n:5.2f} us/order ({calls} calls)"
            f"  client CPU {cpu / n * 1e6:5.2f} us/order  wall {wall / fills * 1000:6.1f} ms/fill"
        )
    await redis.flushdb()
    await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=10_000)
    parser.add_argument("--fills", type=int, default=10)
    parser.add_argument("--payload-bytes", type=int, default=0)
    parser.add_argument("--no-publish", action="store_true", help="the script without PUBLISH")
    args = parser.parse_args()
    asyncio.run(run(args.followers, args.fills, args.payload_bytes, not args.no_publish))


if __name__ == "__main__":
    main()
