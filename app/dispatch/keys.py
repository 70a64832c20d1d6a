"""Redis key names. ``{follower_id}`` is a Cluster hash tag: a follower's keys share a slot."""

from __future__ import annotations

from uuid import UUID


def order_stream(follower_id: UUID | str) -> str:
    return f"copytrade:orders:{{{follower_id}}}"


def dedupe_key(follower_id: UUID | str, order_id: str) -> str:
    return f"copytrade:dedupe:{{{follower_id}}}:{order_id}"


def feed_channel(follower_id: UUID | str) -> str:
    return f"copytrade:feed:{{{follower_id}}}"
