"""Bybit v5's websocket trade stream (``/v5/trade``): ``order.create`` on one socket per account.

The socket logs in with the private stream's ``auth`` (``BybitSigner.ws_auth``); each order
is ``{"reqId", "header": {"X-BAPI-TIMESTAMP", "X-BAPI-RECV-WINDOW"}, "op": "order.create",
"args": [the REST body]}``, answered ``{"reqId", "retCode", "retMsg", "op", "data", "header"}``
(Bybit's "Websocket Trade Guideline"). The answer is handed back as the REST envelope it
mirrors (``retCode``, ``retMsg``, ``result`` = ``data``; the rate-limit headers as headers),
so the REST client's handling of codes (110072, 10006, ...) applies as it is. An
``{"op": "ping"}`` every 20 s keeps the socket open, as on the private stream.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import msgspec

from app.venues.bybit.errors import TRADE_SERVICE_RESTARTING
from app.venues.bybit.signing import BybitSigner
from app.venues.transport import Reply
from app.venues.ws_orders import Exchange, LoginRefused, OrderSocket, SocketUnavailable
from app.venues.ws_orders import order_socket_url as shared_socket_url

URL = "wss://stream.bybit.com/v5/trade"
PING = '{"op":"ping"}'
# Seconds an auth request stays valid.
AUTH_EXPIRES_S = 10


class TradeReply(msgspec.Struct):
    retCode: int
    retMsg: str = ""
    reqId: str | None = None
    op: str = ""
    data: msgspec.Raw = msgspec.Raw(b"")
    header: dict[str, str] = msgspec.field(default_factory=dict)


_decoder = msgspec.json.Decoder(TradeReply)


def order_socket_url(config: Mapping[str, Any]) -> str | None:
    return shared_socket_url(config, "bybit", URL)


class _Op(msgspec.Struct):
    op: str = ""


_op_decoder = msgspec.json.Decoder(_Op)


def _decode(text: str) -> tuple[str | None, TradeReply | None]:
    try:
        reply = _decoder.decode(text)
    except msgspec.DecodeError as exc:
        # The pong to our ping has no retCode (as on the private stream): no answer, no error.
        with contextlib.suppress(msgspec.DecodeError):
            if _op_decoder.decode(text).op == "pong":
                return None, None
        raise ValueError(str(exc)) from exc
    return reply.reqId, reply


class WsOrders:
    """``order.create`` over the account's trade socket."""

    def __init__(
        self,
        url: str,
        session: Callable[[], aiohttp.ClientSession],
        signer: BybitSigner,
        timeout_s: float,
    ) -> None:
        self._signer = signer
        self.socket = OrderSocket(url, session, _decode, timeout_s, login=self._login, ping=PING)
        self._ids = itertools.count(1)

    async def _login(self, exchange: Exchange) -> None:
        expires = int(time.time() * 1000) + AUTH_EXPIRES_S * 1000
        frame = {"reqId": "auth", **self._signer.ws_auth(expires)}
        reply: TradeReply = await exchange("auth", msgspec.json.encode(frame).decode())
        if reply.retCode != 0:
            raise LoginRefused(f"bybit trade socket auth: {reply.retCode} {reply.retMsg:.200}")

    async def create(self, body: Mapping[str, Any]) -> Reply:
        """The order/create answer as REST's envelope; SocketUnavailable when not sent."""
        request_id = f"o{next(self._ids)}"
        frame = {
            "reqId": request_id,
            "header": {
                "X-BAPI-TIMESTAMP": str(int(time.time() * 1000)),
                "X-BAPI-RECV-WINDOW": str(self._signer.recv_window_ms),
            },
            "op": "order.create",
            "args": [body],
        }
        reply: TradeReply = await self.socket.request(
            request_id, msgspec.json.encode(frame).decode()
        )
        if reply.retCode == TRADE_SERVICE_RESTARTING:
            await self.socket.close()
            raise SocketUnavailable(f"bybit trade socket: {reply.retCode} {reply.retMsg:.200}")
        envelope = msgspec.json.encode(
            {"retCode": reply.retCode, "retMsg": reply.retMsg, "result": reply.data or None}
        )
        return Reply(200, reply.header, envelope)

    async def close(self) -> None:
        await self.socket.close()
