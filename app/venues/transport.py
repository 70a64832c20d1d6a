"""What the venues' execution clients share below their protocols: one pooled aiohttp session
per client, exact decimal text on the wire, and the one rule for a request whose answer never
came (OutcomeUnknown: the loop queries by client id before it sends anything again)."""

from __future__ import annotations

from collections.abc import Mapping
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
