"""Binance USD-M's websocket order API (``ws-fapi``): ``order.place`` on one socket per account.

A request is ``{"id", "method": "order.place", "params"}``; ``params`` are the REST order's
plus ``apiKey``, ``timestamp`` and ``recvWindow`` (integers), signed with HMAC-SHA256 over
all of them except ``signature``, sorted by name, as ``name=value`` joined by ``&``. The answer
``{"id", "status", "result" | "error", "rateLimits"}`` carries the HTTP status REST would
have given and the same body, so the REST client's handling of it is reused as it is.
Rate limits are REST's, shared with it: 429/418 carry ``error.data.retryAfter`` (epoch ms).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import msgspec

from app.venues.binance_usdm.signing import BinanceSigner
from app.venues.execution import OutcomeUnknown, RateLimited
from app.venues.ws_orders import OrderSocket
from app.venues.ws_orders import order_socket_url as shared_socket_url

URL = "wss://ws-fapi.binance.com/ws-fapi/v1"


class _RetryData(msgspec.Struct):
    retryAfter: int | None = None


class _Error(msgspec.Struct):
    data: _RetryData | None = None


class Reply(msgspec.Struct):
    """An answer: ``body`` is the raw ``result`` or ``error``, as a REST answer's body."""

    id: str | int | None
    status: int
    result: msgspec.Raw = msgspec.Raw(b"")
    error: msgspec.Raw = msgspec.Raw(b"")


_decoder = msgspec.json.Decoder(Reply)


def order_socket_url(config: Mapping[str, Any]) -> str | None:
    return shared_socket_url(config, "binance-usdm", URL)


def _decode(text: str) -> tuple[str | None, Reply]:
    try:
        reply = _decoder.decode(text)
    except msgspec.DecodeError as exc:
        raise ValueError(str(exc)) from exc
    return (str(reply.id) if reply.id is not None else None), reply


class WsOrders:
    """``order.place`` over the account's socket."""

    def __init__(
        self,
        url: str,
        session: Callable[[], aiohttp.ClientSession],
        signer: BinanceSigner,
        timeout_s: float,
    ) -> None:
        self.socket = OrderSocket(url, session, _decode, timeout_s)
        self._signer = signer
        self._ids = itertools.count(1)

    async def place(self, params: Mapping[str, str]) -> tuple[int, bytes]:
        """(status, body) as REST would answer; SocketUnavailable when not sent."""
        request_id = f"o{next(self._ids)}"
        signed = self._signer.ws_params(params, int(time.time() * 1000))
        frame = msgspec.json.encode({"id": request_id, "method": "order.place", "params": signed})
        reply: Reply = await self.socket.request(request_id, frame.decode())
        body = bytes(reply.result) or bytes(reply.error) or b"{}"
        if reply.status in (429, 418):
            raise RateLimited(_retry_after_s(body), f"ws-fapi order.place: {reply.status}")
        if reply.status >= 500:
            raise OutcomeUnknown(f"ws-fapi order.place: status {reply.status}")
        return reply.status, body

    async def close(self) -> None:
        await self.socket.close()


def _retry_after_s(body: bytes) -> float:
    try:
        error = msgspec.json.decode(body, type=_Error)
    except msgspec.DecodeError:
        return 1.0
    if error.data is None or error.data.retryAfter is None:
        return 1.0
    return max(0.0, error.data.retryAfter / 1000 - time.time())
