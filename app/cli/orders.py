"""``copytrade orders tail``: a follower's orders, live in the terminal.

By default through the API: the follower's order feed websocket (``WS
/v1/followers/{id}/orders/ws``, dispatched and skipped orders and their status changes), with
``--from-start`` first printing the newest orders from ``GET /v1/followers/{id}/orders``; an
API token is all it needs. ``--redis-url`` reads the follower's Redis stream instead, as
executors see it (dispatched orders only).
"""

from __future__ import annotations

import asyncio
import json
import signal
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import typer
from rich.table import Table

from app.cli.api_client import DEFAULT_API_URL, ApiUrl, Token
from app.cli.common import err, fail, out

orders_app = typer.Typer(help="A follower's order queue.", no_args_is_help=True)

# XREAD's answer with decoded responses: [(stream, [(entry id, fields), ...]), ...].
Batches = list[tuple[str, list[tuple[str, dict[str, str]]]]] | None
BLOCK_MS = 1000  # XREAD BLOCK; the client has no socket timeout to trip over
# Fixed widths, so rows printed one at a time line up under the header.
COLUMNS = (
    ("time (UTC)", 23),
    ("order_id", 24),
    ("symbol", 14),
    ("side", 4),
    ("qty", 16),
    ("type", 16),
    ("reduce", 6),
    ("leader fill", 20),
    ("effect", 8),
    ("status", 32),
)
HISTORY = 500  # orders --from-start shows before the live ones (the API's largest page)
NONE = "\u2014"  # a skipped order has no side or quantity to show


def row_table(show_header: bool) -> Table:
    table = Table(show_header=show_header, box=None, pad_edge=False, header_style="bold")
    for name, width in COLUMNS:
        table.add_column(name, width=width, no_wrap=True, overflow="ellipsis")
    return table


def cells(
    order: dict[str, Any],
    status: str = "dispatched",
    reason: str | None = None,
    seen_at: datetime | None = None,
) -> list[str]:
    """One order's row. An order message of version 2 has no ``created_at``: ``seen_at``
    (when its stream entry was added, or when the feed brought it) stands in."""
    kind = order.get("type", "market")
    if order.get("limit_price"):
        kind = f"{kind} {order['limit_price']} {order.get('time_in_force') or ''}".strip()
    side = order.get("side", "")
    style = "green" if side == "buy" else "red"
    skipped = status == "skipped"
    return [
        str(order.get("created_at") or (seen_at.isoformat() if seen_at else ""))[:23],
        str(order.get("order_id", "")),
        str(order.get("symbol", "")),
        NONE if skipped else f"[{style}]{side}[/]",
        NONE if skipped else str(order.get("qty", "")),
        NONE if skipped else kind,
        "yes" if order.get("reduce_only") and not skipped else "",
        str(order.get("leader_fill_id", "")),
        str((order.get("sizing") or {}).get("effect", "")),
        f"skipped: {reason}" if skipped and reason else status,
    ]


def print_row(cells: list[str]) -> None:
    table = row_table(show_header=False)
    table.add_row(*cells)
    out.print(table)


async def tail(
    redis_url: str, follower_id: UUID, from_start: bool, count: int | None, as_json: bool
) -> int:
    """Print the follower's orders as they reach its Redis stream; return how many were shown."""
    from redis.asyncio import Redis

    from app.dispatch.keys import order_stream

    redis = Redis.from_url(redis_url, decode_responses=True, socket_connect_timeout=5)
    key = order_stream(follower_id)
    shown = 0
    # Ctrl-C or a TERM ends the loop after the read in flight (at most BLOCK_MS): nothing
    # half-printed, Redis closed. Not by cancelling the read: redis-py can swallow a
    # cancellation that lands between two commands. (Installed explicitly: a shell's
    # background job inherits SIGINT ignored.)
    loop, stop = asyncio.get_running_loop(), asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        # Resolve "$" once to the id of the newest entry: XREAD from "$" on every call would
        # miss entries added between two calls.
        last = "0-0"
        if not from_start:
            newest: list[tuple[str, dict[str, str]]] = await redis.xrevrange(  # type: ignore[assignment]
                key, count=1
            )
            last = newest[0][0] if newest else "0-0"
        err.print(f"Following {key} from {'the start' if from_start else 'now'} (Ctrl-C to stop)")
        if not as_json:
            out.print(row_table(show_header=True))
        while not stop.is_set() and (count is None or shown < count):
            batches: Batches = await redis.xread(  # type: ignore[assignment]
                {key: last}, block=BLOCK_MS, count=100
            )
            for _stream, entries in batches or ():
                for entry_id, fields in entries:
                    last = entry_id
                    if count is not None and shown >= count:
                        break
                    _show(entry_id, fields, as_json)
                    shown += 1
            out.file.flush()
        if stop.is_set():
            err.print("stopped")
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await redis.aclose()
    return shown


def _show(entry_id: str, fields: dict[str, str], as_json: bool) -> None:
    raw = fields.get("order", "{}")
    if as_json:
        out.print(raw, markup=False, highlight=False, soft_wrap=True)
        return
    try:
        order = json.loads(raw)
    except ValueError:
        err.print(f"{entry_id}: not an order message")
        return
    from app.dispatch.keys import stream_id

    ms, _ = stream_id(entry_id)
    print_row(cells(order, seen_at=datetime.fromtimestamp(ms / 1000, UTC)))


@orders_app.command("tail")
def tail_command(
    follower: Annotated[UUID, typer.Option("--follower", help="Follower id.", show_default=False)],
    from_start: Annotated[
        bool,
        typer.Option(
            "--from-start",
            help=f"Print the newest orders first (up to {HISTORY}; with --redis-url, what the "
            "stream still holds).",
        ),
    ] = False,
    count: Annotated[
        int | None,
        typer.Option("--count", min=1, help="Stop after this many orders.", show_default=False),
    ] = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    redis_url: Annotated[
        str | None,
        typer.Option(
            "--redis-url",
            help="Read the follower's Redis stream directly instead of the API's feed.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print each order's JSON, a line each.")
    ] = False,
) -> None:
    """Follow a follower's orders live: needs only --api-url and --token (the admin token or
    the follower's key), or --redis-url to read its stream as executors do."""
    if redis_url:
        from redis.exceptions import RedisError

        try:
            shown = asyncio.run(tail(redis_url, follower, from_start, count, as_json))
        except RedisError as exc:
            fail(f"Redis at {redis_url}: {type(exc).__name__}: {exc}")
    else:
        if not token:
            fail("no token: pass --token or set COPYTRADE_ADMIN_TOKEN", code=2)
        from app.cli.feed_tail import FeedTail

        feed = FeedTail(api_url, token, follower, as_json)
        shown = asyncio.run(feed.run(from_start, count))
    err.print(f"{shown} order(s)")
