"""The private websocket of one account: ``orderUpdates`` and ``userFills`` subscriptions
(websocket/subscriptions docs), kept alive with ``{"method": "ping"}`` (the venue closes a
connection it has not heard from in 60 s: websocket/timeouts-and-heartbeats)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import msgspec
import structlog

from app.venues.execution import AccountEvent, ExecutionError
from app.venues.hyperliquid.schemas import OrderWithStatus, WsMessage, WsUserFills
from app.venues.hyperliquid.stream import OrderBook

log = structlog.get_logger(__name__)

PING_INTERVAL_S = 30.0
_orders = msgspec.json.Decoder(list[OrderWithStatus])
_fills = msgspec.json.Decoder(WsUserFills)
_message = msgspec.json.Decoder(WsMessage)


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


async def _ping(ws: aiohttp.ClientWebSocketResponse, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        await ws.send_str('{"method":"ping"}')


def parse(raw: str | bytes, address: str, book: OrderBook) -> list[AccountEvent]:
    """The order events in one stream message (none for acks, pongs, other channels).

    Raises ExecutionError when the venue refuses a subscription, msgspec.DecodeError for a
    message that cannot be read.
    """
    message = _message.decode(raw)
    if message.channel == "error":
        raise ExecutionError(f"private stream refused: {bytes(message.data)[:200]!r}")
    events: list[AccountEvent] = []
    if message.channel == "orderUpdates":
        for update in _orders.decode(message.data):
            order = book.on_order(update)
            if order is not None:
                events.append(AccountEvent(order=order, at=_at(update.status_timestamp)))
    elif message.channel == "userFills":
        data = _fills.decode(message.data)
        if data.user.lower() != address:
            return []
        for fill in data.fills:
            # The first message is history (isSnapshot): it completes prices, emits nothing.
            order = book.on_fill(fill, emit=not data.is_snapshot)
            if order is not None:
                events.append(AccountEvent(order=order, at=_at(fill.time)))
    return events


async def private_stream(
    session: aiohttp.ClientSession,
    url: str,
    address: str,
    book: OrderBook,
    ping_interval_s: float = PING_INTERVAL_S,
) -> AsyncIterator[AccountEvent]:
    """Subscribe and yield order events until the connection closes."""
    async with session.ws_connect(url) as ws:
        for kind in ("orderUpdates", "userFills"):
            subscription = {"type": kind, "user": address}
            await ws.send_json({"method": "subscribe", "subscription": subscription})
        pinger = asyncio.create_task(_ping(ws, ping_interval_s))
        try:
            async for frame in ws:
                if frame.type is not aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    events = parse(frame.data, address, book)
                except msgspec.DecodeError as exc:
                    # One unreadable message is skipped; its neighbours still count.
                    log.warning("hyperliquid_stream_malformed", error=str(exc)[:200])
                    continue
                for event in events:
                    yield event
        finally:
            pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pinger
