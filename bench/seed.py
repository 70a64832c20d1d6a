"""Bulk set-up straight into Postgres (COPY): leaders, followers, equities, subscriptions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

import asyncpg

from app.security.tokens import PUSH_TOKEN_PREFIX, hash_secret, new_secret

TABLES = (
    "subscription_position_vector",
    "subscription_position_correction",
    "leader_position",
    "order_event",
    "follower_position",
    "follower_order",
    "leader_fill",
    "subscription",
    "equity_snapshot",
    "instrument",
    "follower",
    "leader",
)


@dataclass(frozen=True)
class Group:
    """One leader and its followers."""

    leader_id: uuid.UUID
    push_token: str
    followers: list[uuid.UUID]
    subscriptions: list[uuid.UUID]


async def reset(conn: asyncpg.Connection) -> None:
    await conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")


async def seed_group(conn: asyncpg.Connection, name: str, followers: int) -> Group:
    leader_id = uuid.uuid4()
    token = new_secret(PUSH_TOKEN_PREFIX)
    await conn.execute(
        "INSERT INTO leader (id, name, feed_kind, push_token_hash) VALUES ($1, $2, 'push', $3)",
        leader_id,
        name,
        hash_secret(token),
    )
    follower_ids = [uuid.uuid4() for _ in range(followers)]
    sub_ids = [uuid.uuid4() for _ in range(followers)]
    await conn.copy_records_to_table(
        "follower",
        records=[(fid, f"{name}-f{n}", uuid.uuid4().hex * 2) for n, fid in enumerate(follower_ids)],
        columns=["id", "name", "api_key_hash"],
    )
    await conn.copy_records_to_table(
        "equity_snapshot",
        records=[(None, leader_id, Decimal(1_000_000))]
        + [(fid, None, Decimal(1000 + n % 9000)) for n, fid in enumerate(follower_ids)],
        columns=["follower_id", "leader_id", "equity"],
    )
    await conn.copy_records_to_table(
        "subscription",
        records=[
            (sid, fid, leader_id, Decimal(1), "active")
            for sid, fid in zip(sub_ids, follower_ids, strict=True)
        ],
        columns=["id", "follower_id", "leader_id", "multiplier", "status"],
    )
    return Group(leader_id, token, follower_ids, sub_ids)
