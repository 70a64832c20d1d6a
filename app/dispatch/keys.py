"""Redis key names. ``{follower_id}`` is a Cluster hash tag: a follower's keys share a slot."""

from __future__ import annotations

from uuid import UUID


def order_stream(follower_id: UUID | str) -> str:
    return f"copytrade:orders:{{{follower_id}}}"


def dedupe_set(follower_id: UUID | str, period: int) -> str:
    """The order ids enqueued for a follower during one dedupe period."""
    return f"copytrade:dedupe:{{{follower_id}}}:{period}"


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
