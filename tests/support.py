"""Test helpers: a live server on loopback and a small typed API client."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect

from app.dispatch.keys import feed_channel
from app.main import create_app
from app.runtime import Runtime
from app.settings import Settings

ADMIN_TOKEN = "test-admin-token-0123456789abcdef"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def eventually(
    check: Callable[[], Any], what: str = "", within_s: float = 10.0, every_s: float = 0.02
) -> Any:
    """Call ``check`` (plain or async) until it returns something truthy, and return that.

    The one way tests wait for something to happen. ``within_s`` only bounds how long a
    broken test hangs before it fails naming ``what``: it is not a performance figure.
    ``every_s`` spaces the calls, for a check that is itself heavy (a Prometheus query).
    To wait for a value that may be falsy (0, an empty list), return it in a tuple."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        assert loop.time() < deadline, f"not within {within_s}s: {what or check}"
        await asyncio.sleep(every_s)


async def feed_subscribed(redis: Any, follower_id: str) -> None:
    """Wait until the server has subscribed a follower's feed socket to its channel: the
    socket opens first, and an order published in between reaches only the history."""
    channel = feed_channel(follower_id)

    async def subscribed() -> bool:
        return int((await redis.pubsub_numsub(channel))[0][1]) >= 1

    await eventually(subscribed, f"a subscriber on {channel}")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class LiveServer:
    base_url: str
    app: FastAPI
    http: httpx.AsyncClient

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1)

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime


@asynccontextmanager
async def serve_asgi(app: Any, **options: Any) -> AsyncIterator[int]:
    """Serve ``app`` with uvicorn on a free loopback port, in this event loop; yield the port."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", ws="websockets-sansio", **options
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started or task.done(), "uvicorn started or failed")
    if not server.started:
        server.should_exit = True
        await task
        raise RuntimeError("test server did not start")
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def start_live_server(settings: Settings) -> AsyncIterator[LiveServer]:
    app = create_app(settings)
    async with serve_asgi(
        app,
        lifespan="on",
        ws_max_size=settings.max_frame_bytes,
        ws_per_message_deflate=settings.ws_compression,
    ) as port:
        base_url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
            yield LiveServer(base_url, app, http)


class Api:
    """The v1 contract as the tests use it; every call asserts its expected status."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def call(
        self, method: str, path: str, expect: int, token: str | None = None, **kw: Any
    ) -> Any:
        headers = bearer(token) if token else ADMIN
        response = await self.http.request(method, path, headers=headers, **kw)
        assert response.status_code == expect, (method, path, response.status_code, response.text)
        return response.json() if response.content else None

    async def settled_orders(
        self, follower_id: str, token: str | None = None, timeout_s: float = 5.0
    ) -> Any:
        """GET the follower's orders once none is still 'pending': the "dispatched" mark is
        written in the background right after the order reaches Redis."""

        async def settled() -> tuple[Any] | None:
            orders = await self.call("GET", f"/v1/followers/{follower_id}/orders", 200, token)
            return (orders,) if all(o["status"] != "pending" for o in orders) else None

        (orders,) = await eventually(settled, "no order still pending", timeout_s)
        return orders

    async def leader(self, name: str = "leader", feed: dict[str, Any] | None = None) -> Any:
        body = {"name": name, "feed": feed or {"kind": "push"}}
        return await self.call("POST", "/v1/leaders", 201, json=body)

    async def follower(self, name: str = "follower") -> Any:
        return await self.call("POST", "/v1/followers", 201, json={"name": name})

    async def leader_equity(self, leader_id: str, equity: str) -> Any:
        return await self.call(
            "POST", f"/v1/leaders/{leader_id}/equity", 201, json={"equity": equity}
        )

    async def follower_equity(self, follower_id: str, equity: str) -> Any:
        return await self.call(
            "POST", f"/v1/followers/{follower_id}/equity", 201, json={"equity": equity}
        )

    async def subscribe(self, follower_id: str, leader_id: str, multiplier: str = "1") -> Any:
        body = {"leader_id": leader_id, "multiplier": multiplier}
        return await self.call("POST", f"/v1/followers/{follower_id}/subscriptions", 201, json=body)

    async def instrument(self, symbol: str, **rules: str) -> Any:
        return await self.call("PUT", f"/v1/instruments/{symbol}", 200, json=rules)


def fill_frame(fill_id: str, symbol: str, side: str, qty: str, price: str, **extra: Any) -> str:
    return json.dumps(
        {
            "type": "fill",
            "fill_id": fill_id,
            "symbol": symbol,
            "side": side,
            "qty": qty,
            "price": price,
            **extra,
        }
    )


@asynccontextmanager
async def push_socket(ws_url: str, leader_id: str, token: str) -> AsyncIterator[ClientConnection]:
    async with connect(
        f"{ws_url}/v1/leaders/{leader_id}/fills/ws", additional_headers=bearer(token)
    ) as ws:
        yield ws


async def send_frame(ws: ClientConnection, frame: str) -> dict[str, Any]:
    await ws.send(frame)
    reply: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
    return reply


async def read_stream(redis: Any, follower_id: str) -> list[dict[str, Any]]:
    """The orders in a follower's stream, decoded, oldest first."""
    entries = await redis.xrange(f"copytrade:orders:{{{follower_id}}}")
    return [json.loads(fields["order"]) for _, fields in entries]
