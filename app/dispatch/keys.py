"""Redis key names. ``{follower_id}`` is a Cluster hash tag: a follower's keys share a slot."""

from __future__ import annotations

import functools
from uuid import UUID

from redis.crc import REDIS_CLUSTER_HASH_SLOTS as SLOTS
from redis.crc import key_slot


def order_stream(follower_id: UUID | str) -> str:
    return f"copytrade:orders:{{{follower_id}}}"


def sent_marker(fill_key: str, bucket: str) -> str:
    """Set once every order of one bucket of a fill is in its stream (app.dispatch.enqueue)."""
    return f"copytrade:sent:{fill_key}:{bucket}"


def slot_sent_marker(fill_key: str, slot: int) -> str:
    """``sent_marker`` on a Redis Cluster, for a fill's orders whose streams live in ``slot``:
    in that slot too."""
    return f"copytrade:sent:{{{_slot_tags()[slot]}}}:{fill_key}"


@functools.cache
def _slot_tags() -> tuple[str, ...]:
    """Per cluster slot, a short hash tag that hashes to it (found once, on first use)."""
    tags: list[str | None] = [None] * SLOTS
    missing, number = SLOTS, 0
    while missing:
        tag = str(number)
        slot = key_slot(tag.encode())
        if tags[slot] is None:
            tags[slot] = tag
            missing -= 1
        number += 1
    return tuple(tag or "" for tag in tags)


def feed_channel(follower_id: UUID | str) -> str:
    return f"copytrade:feed:{{{follower_id}}}"


def report_stream(follower_id: UUID | str) -> str:
    return f"copytrade:reports:{{{follower_id}}}"


def dead_letter_stream(follower_id: UUID | str) -> str:
    return f"copytrade:orders-dead:{{{follower_id}}}"


def report_dead_letter_stream(follower_id: UUID | str) -> str:
    return f"copytrade:reports-dead:{{{follower_id}}}"


def stream_id(entry_id: str | bytes) -> tuple[int, int]:
    """Order stream ids numerically ("1700000000000-3" -> (1700000000000, 3))."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def exec_fence(follower_id: UUID | str) -> str:
    """Set while a follower's account is disconnected: its executor places nothing more."""
    return f"copytrade:exec-fence:{{{follower_id}}}"
