"""The naive baseline behind the same push websocket protocol, so both are measured alike.

    python -m bench.naive_server --port 9000

Frames in, ``{"type": "ack", ...}`` out, exactly like the service's push endpoint, with the
obvious pipeline behind it (bench/naive.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from decimal import Decimal

import asyncpg
import uvloop
from redis.asyncio import Redis
from websockets.asyncio.server import ServerConnection, serve

from bench.naive import NaivePipeline


async def main(port: int, dsn: str, redis_url: str) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=2, max_size=12)
    redis = Redis.from_url(redis_url)
    naive = NaivePipeline(pool, redis)

    async def handler(ws: ServerConnection) -> None:
        path = ws.request.path if ws.request else ""
        leader_id = uuid.UUID(path.split("/")[3])
        async for raw in ws:
            frame = json.loads(raw, parse_float=Decimal)
            sent = await naive.handle_fill(
                leader_id, frame["fill_id"], frame["side"], Decimal(frame["qty"]),
                Decimal(frame["price"]),
            )  # fmt: skip
            status = "accepted" if sent >= 0 else "duplicate"
            await ws.send(
                json.dumps({"type": "ack", "fill_id": frame["fill_id"], "status": status})
            )

    async with serve(handler, "127.0.0.1", port, max_size=2**20):
        print("ready", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args()
    uvloop.run(main(args.port, args.dsn, args.redis_url))
