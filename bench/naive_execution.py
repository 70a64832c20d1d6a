"""The naive executor, the execution bench's baseline: the obvious way to place the orders.

    python -m bench.naive_execution --redis-url URL --rest-url URL --api-key K --api-secret S
    (follower ids, one a line, on stdin; prints "ready" once it reads their streams)

One XREAD over the followers' order streams; each order in turn: a new HTTP connection
(a fresh aiohttp session), one signed ``POST /fapi/v1/order``, its answer awaited. No
consumer group, no acknowledgement, no exactly-once: only the cost of the wire is compared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any
from urllib.parse import urlencode

import aiohttp
from redis.asyncio import Redis

from app.dispatch.keys import order_stream
from app.venues.binance_usdm.signing import sign


async def place(rest_url: str, api_key: str, api_secret: str, order: dict[str, str]) -> None:
    query = urlencode(
        {
            "symbol": order["symbol"],
            "side": order["side"].upper(),
            "type": "MARKET",
            "quantity": order["qty"],
            "newClientOrderId": order["order_id"],
            "timestamp": int(time.time() * 1000),
        }
    )
    query += "&signature=" + sign(query, api_secret)
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{rest_url}/fapi/v1/order?{query}", headers={"X-MBX-APIKEY": api_key}
        ) as response,
    ):
        await response.read()


async def run(args: argparse.Namespace, followers: list[str]) -> None:
    redis = Redis.from_url(args.redis_url)
    # The streams are new (the bench flushed Redis): read them from the start.
    last: dict[str, bytes | str] = {order_stream(f): "0-0" for f in followers}
    print("ready", flush=True)
    while True:
        batch: Any = await redis.xread(last, block=1000)  # type: ignore[arg-type]
        for key, entries in batch:
            for entry_id, fields in entries:
                last[key.decode()] = entry_id
                order = json.loads(fields[b"order"])
                await place(args.rest_url, args.api_key, args.api_secret, order)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--rest-url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--api-secret", required=True)
    args = parser.parse_args()
    followers = [line.strip() for line in sys.stdin if line.strip()]
    asyncio.run(run(args, followers))


if __name__ == "__main__":
    main()
