"""Shared arrangement of the order-lifecycle tests: one leader, followers, and their orders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from tests.support import Api, LiveServer, eventually, fill_frame, push_socket, send_frame


@dataclass(frozen=True)
class Follower:
    id: str
    api_key: str


@dataclass(frozen=True)
class Desk:
    """A push-mode leader (equity 100000) and followers (equity 10000 each, multiplier 1):
    a leader fill of qty q gives each follower an order of q / 10."""

    leader_id: str
    push_token: str
    followers: list[Follower]


async def seed_desk(api: Api, followers: int = 1) -> Desk:
    leader = await api.leader()
    await api.leader_equity(leader["id"], "100000")
    await api.instrument("BTCUSDT", qty_step="0.001", min_qty="0.001", min_notional="5")
    made: list[Follower] = []
    for n in range(followers):
        follower = await api.follower(f"follower-{n}")
        await api.follower_equity(follower["id"], "10000")
        await api.subscribe(follower["id"], leader["id"])
        made.append(Follower(follower["id"], follower["api_key"]))
    return Desk(leader["id"], leader["push_token"], made)


async def push_fills(server: LiveServer, desk: Desk, *frames: str) -> None:
    """Push fill frames over the leader websocket; each must be accepted."""
    async with push_socket(server.ws_url, desk.leader_id, desk.push_token) as ws:
        for frame in frames:
            ack = await send_frame(ws, frame)
            assert ack["status"] == "accepted", ack


async def push_fill(
    server: LiveServer,
    desk: Desk,
    fill_id: str,
    side: str = "buy",
    qty: str = "2",
    price: str = "50000",
    **extra: Any,
) -> str:
    """Push one fill; return the order id of the (first) follower's order."""
    await push_fills(server, desk, fill_frame(fill_id, "BTCUSDT", side, qty, price, **extra))
    follower = desk.followers[0]
    orders = await Api(server.http).settled_orders(follower.id, token=follower.api_key)
    # The first leg: a reversal's second leg is the opening one.
    order_id = min(
        (o for o in orders if o["leader_fill_id"] == fill_id), key=lambda o: o["created_at"]
    )["order_id"]
    assert isinstance(order_id, str)
    return order_id


async def get_order(api: Api, follower: Follower, order_id: str) -> Any:
    return await api.call(
        "GET", f"/v1/followers/{follower.id}/orders/{order_id}", 200, token=follower.api_key
    )


async def wait_for_order(
    api: Api,
    follower: Follower,
    order_id: str,
    done: Callable[[Any], bool],
    within: float = 5.0,
) -> Any:
    """Poll the order until ``done(order)``, and return it."""

    async def reached() -> Any:
        order = await get_order(api, follower, order_id)
        return order if done(order) else None

    return await eventually(reached, f"order {order_id} to get there", within)


# --- typed stream access (redis-py's own annotations cover both decode modes) ------------------

Entry = tuple[str, dict[bytes, bytes]]


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def xrange(redis: Redis, stream: str) -> list[Entry]:
    """Every entry of ``stream``, oldest first: (id, fields), from a bytes client."""
    raw: Any = await redis.xrange(stream)
    return [(text(entry_id), fields) for entry_id, fields in raw]


async def xread_new(
    redis: Redis, group: str, consumer: str, stream: str, count: int
) -> list[Entry]:
    """XREADGROUP ``>``: deliver up to ``count`` new entries to ``consumer``, without acking."""
    raw: Any = await redis.xreadgroup(group, consumer, {stream: ">"}, count=count)
    return [(text(entry_id), fields) for entry_id, fields in (raw[0][1] if raw else [])]


async def xadd(
    redis: Redis, stream: str, fields: dict[FieldT, EncodableT], entry_id: str = "*"
) -> str:
    return text(await redis.xadd(stream, fields, id=entry_id))


async def pending_count(redis: Redis, stream: str, group: str) -> int:
    info: Any = await redis.xpending(stream, group)
    return int(info["pending"])
