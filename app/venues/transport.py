"""What the venues' execution clients share below their protocols: one pooled aiohttp session
per client, a private stream's text frames kept alive by the venue's ping, exact decimal text
on the wire, and the one rule for a request whose answer never came (OutcomeUnknown: the loop
queries by client id before it sends anything again)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, Protocol

import aiohttp
from yarl import URL

from app.security.crypto import Credential
from app.venues.execution import OutcomeUnknown

# A venue that has not answered within this many seconds may still apply the order later.
DEFAULT_TIMEOUT_S = 10.0


class ClientContext(Protocol):
    """What a venue's ``build`` reads to make its client (the account registry's context):
    the stored config (base URLs, options), the decrypted credentials, the REST timeout."""

    @property
    def config(self) -> Mapping[str, Any]: ...

    @property
    def credentials(self) -> Mapping[str, Credential]: ...

    @property
    def timeout_s(self) -> float: ...


def new_session(timeout_s: float = DEFAULT_TIMEOUT_S) -> aiohttp.ClientSession:
    """A pooled session: connections are kept alive between orders (a new TLS handshake per
    order costs more than the order itself)."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        connector=aiohttp.TCPConnector(limit=50, ttl_dns_cache=300),
    )


class SessionSlot:
    """A client's session: the one it was given (the giver closes it), else one it makes on
    first use, again after it was closed, and closes itself."""

    def __init__(self, session: aiohttp.ClientSession | None, timeout_s: float) -> None:
        self._session = session
        self._owned = session is None
        self._timeout_s = timeout_s

    def get(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = new_session(self._timeout_s)
            self._owned = True
        return self._session

    async def close(self) -> None:
        if self._owned and self._session is not None:
            await self._session.close()
        self._session = None


WS_CLOSED = frozenset(
    {
        aiohttp.WSMsgType.CLOSE,
        aiohttp.WSMsgType.CLOSING,
        aiohttp.WSMsgType.CLOSED,
        aiohttp.WSMsgType.ERROR,
    }
)


async def text_frames(
    ws: aiohttp.ClientWebSocketResponse, ping: str, interval_s: float
) -> AsyncIterator[str]:
    """The text frames of a private stream until it closes, sending the venue's application
    ping (``ping``) every ``interval_s``: Bybit and OKX drop a connection that stays silent."""
    next_ping = time.monotonic() + interval_s
    while True:
        try:
            message = await ws.receive(timeout=max(0.0, next_ping - time.monotonic()))
        except TimeoutError:
            await ws.send_str(ping)
            next_ping = time.monotonic() + interval_s
            continue
        if message.type is aiohttp.WSMsgType.TEXT:
            yield message.data
        elif message.type in WS_CLOSED:
            return


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes


async def send(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: str | None = None,
) -> Reply:
    """One request, ``url`` sent exactly as given (its query string is what was signed).

    Raises OutcomeUnknown on a timeout or a broken connection: the venue may have applied it.
    """
    try:
        async with session.request(
            method,
            URL(url, encoded=True),
            headers=headers,
            data=body.encode() if body is not None else None,
        ) as response:
            return Reply(response.status, response.headers, await response.read())
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise OutcomeUnknown(f"{method} {URL(url).path}: {type(exc).__name__}") from exc


def plain(value: Decimal) -> str:
    """``value`` as plain decimal text, no exponent and no trailing zeros ("0.001", "50")."""
    text = format(value, "f")  # exact: normalize() would round to the context's 28 digits
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def to_step(value: Decimal, step: Decimal, *, up: bool = False) -> Decimal:
    """``value`` rounded to a multiple of ``step``: down (toward zero), or up when ``up``."""
    units = (value / step).to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR)
    return units * step
