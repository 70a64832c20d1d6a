"""The paper executor: fills every order at the leader's price ± slippage and reports back.

    python -m app.executors.paper --follower <id> [--follower <id> ...] [--slippage 0.0005]

It closes the loop without an exchange: orders are consumed with the consumer-group protocol
(``app.dispatch.consumer``) and reported as accepted, then filled, on the report stream.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
from decimal import Decimal
from uuid import UUID

import structlog
from redis.asyncio import Redis

from app.dispatch.consumer import ConsumerConfig, Order, OrderConsumer, ReportWriter
from app.domain.decimals import fmt
from app.redisconn import AnyRedis

log = structlog.get_logger(__name__)

GROUP = "paper"


def paper_price(order: Order, slippage: Decimal) -> Decimal:
    """The leader's price moved against the follower by ``slippage`` (a fraction)."""
    price = Decimal(order["sizing"]["leader_price"])
    moved = price * (1 + slippage) if order["side"] == "buy" else price * (1 - slippage)
    # At the leader price's own tick (its decimal places), as a venue would fill.
    return moved.quantize(Decimal(1).scaleb(min(0, int(price.as_tuple().exponent))))


class PaperExecutor:
    def __init__(self, redis: AnyRedis, follower_ids: list[UUID], slippage: Decimal) -> None:
        self.redis = redis
        self.slippage = slippage
        self.writer = ReportWriter(redis)
        config = ConsumerConfig(group=GROUP, consumer=f"paper-{socket.gethostname()}")
        self.consumers = [
            OrderConsumer(redis, fid, config, self._execute, self.writer) for fid in follower_ids
        ]

    async def _execute(self, order: Order) -> None:
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
        await asyncio.gather(*(consumer.run(stop) for consumer in self.consumers))


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
