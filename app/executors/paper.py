"""The paper executor: fills every order at the leader's price ± slippage and reports back.

    python -m app.executors.paper --follower <id> [--follower <id> ...] [--slippage 0.0005]

It closes the loop without an exchange: orders are consumed with the executor side's shared
reads (``app.executors.protocol.consumer``) and reported as accepted, then filled, on the
report stream.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
from decimal import Decimal
from functools import partial
from uuid import UUID

import structlog
from redis.asyncio import Redis

from app.domain.decimals import fmt
from app.executors.protocol.consumer import (
    ConsumerConfig,
    Delivery,
    Order,
    OrderReads,
    ReportWriter,
)
from app.executors.protocol.messages import reference_price
from app.loops import Backoff, SupervisedTask
from app.redisconn import AnyRedis

log = structlog.get_logger(__name__)

GROUP = "paper"


def paper_price(order: Order, slippage: Decimal) -> Decimal:
    """The leader's price moved against the follower by ``slippage`` (a fraction)."""
    price = reference_price(order)
    moved = price * (1 + slippage) if order["side"] == "buy" else price * (1 - slippage)
    # At the leader price's own tick (its decimal places), as a venue would fill.
    return moved.quantize(Decimal(1).scaleb(min(0, int(price.as_tuple().exponent))))


class PaperExecutor:
    def __init__(self, redis: AnyRedis, follower_ids: list[UUID], slippage: Decimal) -> None:
        self.redis = redis
        self.slippage = slippage
        self.writer = ReportWriter(redis)
        self.follower_ids = follower_ids
        config = ConsumerConfig(group=GROUP, consumer=f"paper-{socket.gethostname()}")
        self.reads = OrderReads(redis, config, self.writer, name="paper")
        self.consumers = [
            SupervisedTask(f"paper:{fid}", partial(self._consume, fid), Backoff(0.2, 10.0))
            for fid in follower_ids
        ]

    async def _consume(self, follower_id: UUID, backoff: Backoff) -> None:
        backoff.reset()
        await self.reads.consume(follower_id, self._execute)

    async def _execute(self, order: Order, _delivery: Delivery) -> None:
        """Fill ``order``; the same whichever delivery it is (a paper fill has no venue to
        ask, and a second report of a fill changes nothing)."""
        qty = Decimal(order["qty"])
        price = paper_price(order, self.slippage)
        await self.writer.report(order["follower_id"], order["order_id"], "accepted")
        await self.writer.report(
            order["follower_id"], order["order_id"], "filled", filled_qty=qty, avg_price=price
        )
        log.info(
            "paper_fill",
            follower_id=order["follower_id"],
            order_id=order["order_id"],
            side=order["side"],
            qty=fmt(qty),
            price=fmt(price),
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set."""
        self.reads.start()
        for consumer in self.consumers:
            consumer.start()
        try:
            await stop.wait()
        finally:
            for consumer in self.consumers:
                await consumer.stop()
            await self.reads.stop()


async def _main(redis_url: str, follower_ids: list[UUID], slippage: Decimal) -> None:
    redis = Redis.from_url(redis_url, socket_timeout=10)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await PaperExecutor(redis, follower_ids, slippage).run(stop)
    finally:
        await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--follower", action="append", type=UUID, required=True)
    parser.add_argument("--slippage", type=Decimal, default=Decimal("0.0005"))
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("COPYTRADE_REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="defaults to COPYTRADE_REDIS_URL",
    )
    args = parser.parse_args()
    asyncio.run(_main(args.redis_url, args.follower, args.slippage))


if __name__ == "__main__":
    main()
