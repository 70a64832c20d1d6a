"""OKX's websocket ``order`` operation on the private endpoint, one socket per account.

The socket logs in as the private stream does (``OkxSigner.ws_login``: ``{"event": "login",
"code": "0"}`` back, or ``{"event": "error"}``); each order is ``{"id", "op": "order", "args":
[the REST body]}``, answered ``{"id", "op", "code", "msg", "data": [{"sCode", "sMsg", ...}]}``
(OKX WebSocket Trade API, "Place order"). The answer is handed back as the REST envelope it
mirrors (``code``, ``msg``, ``data``), so the REST client's handling of codes (51016, 50011,
rejections) applies as it is. A ``ping`` text every 20 s keeps the socket open (OKX closes
one silent for 30 s).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import msgspec

from app.venues.configs import DEFAULT_URLS
from app.venues.okx.errors import NOT_LOGGED_IN
from app.venues.okx.signing import OkxSigner
from app.venues.transport import Reply
from app.venues.ws_orders import Exchange, LoginRefused, OrderSocket, SocketUnavailable
from app.venues.ws_orders import order_socket_url as shared_socket_url

LOGIN = "login"


class _Answer(msgspec.Struct):
    id: str | None = None
    event: str | None = None
    code: str = ""
    msg: str = ""
    data: msgspec.Raw = msgspec.Raw(b"")


_decoder = msgspec.json.Decoder(_Answer)


def order_socket_url(config: Mapping[str, Any]) -> str | None:
    """OKX takes orders on its private endpoint: the stream's own URL by default."""
    return shared_socket_url(config, "okx", DEFAULT_URLS["okx"][1])


def _decode(text: str) -> tuple[str | None, _Answer]:
    if text == "pong":
        return None, _Answer()
    try:
        answer = _decoder.decode(text)
    except msgspec.DecodeError as exc:
        raise ValueError(str(exc)) from exc
    if answer.id is None and answer.event in ("login", "error"):
        return LOGIN, answer
    return answer.id, answer


class WsOrders:
    """``order`` over the account's private socket."""

    def __init__(
        self,
        url: str,
        session: Callable[[], aiohttp.ClientSession],
        signer: OkxSigner,
        timeout_s: float,
    ) -> None:
        self._signer = signer
        self.socket = OrderSocket(url, session, _decode, timeout_s, login=self._login, ping="ping")
        self._ids = itertools.count(1)

    async def _login(self, exchange: Exchange) -> None:
        frame = msgspec.json.encode(self._signer.ws_login(int(time.time()))).decode()
        answer: _Answer = await exchange(LOGIN, frame)
        if answer.event != "login" or answer.code != "0":
            raise LoginRefused(f"okx order socket login: {answer.code} {answer.msg:.200}")

    async def order(self, body: Mapping[str, Any]) -> Reply:
        """The order's answer as REST's envelope; SocketUnavailable when not sent."""
        request_id = f"o{next(self._ids)}"  # OKX: 1-32 alphanumerics
        frame = msgspec.json.encode({"id": request_id, "op": "order", "args": [body]})
        answer: _Answer = await self.socket.request(request_id, frame.decode())
        if answer.code == NOT_LOGGED_IN:
            await self.socket.close()
            raise SocketUnavailable(f"okx order socket: {answer.code} {answer.msg:.200}")
        envelope = msgspec.json.encode(
            {"code": answer.code, "msg": answer.msg, "data": answer.data or []}
        )
        return Reply(200, {}, envelope)

    async def close(self) -> None:
        await self.socket.close()
