"""The contract between the execution role and a venue: place, find by client id, read the account.

Each venue folder (``app/venues/<venue>/``) implements :class:`ExecutionClient`. The execution
loop (shared by all venues) consumes a follower's order stream, turns each order message into an
:class:`OrderRequest` and drives the client; it never sees a venue's wire format.

Exactly once at the venue rests on two facts every venue gives us: an order carries a client
order id we choose (derived deterministically from ``order_id``), and the venue can be asked for
an order by that id. After any unknown outcome (a timeout, a 5xx, a dropped connection, a crash
between placing and acknowledging) the loop calls :meth:`ExecutionClient.query` before it sends
anything again.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal, Protocol


class OrderState(StrEnum):
    """An order's state at the venue, in the report vocabulary
    (``app/executors/protocol/reports.py``)."""

    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"


class RejectReason(StrEnum):
    """Why a venue refused an order, mapped from each venue's own error codes."""

    INSUFFICIENT_MARGIN = "insufficient_margin"
    BELOW_MIN_NOTIONAL = "below_min_notional"
    BAD_PRECISION = "bad_precision"
    REDUCE_ONLY_REJECTED = "reduce_only_rejected"
    UNKNOWN_SYMBOL = "unknown_symbol"
    VENUE_ERROR = "venue_error"


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """One order as the venue must receive it.

    ``qty`` is in base units (what the order message carries); a client whose venue counts in
    contracts (OKX: ``qty / ctVal`` on ``lotSz``) converts it itself, from its instrument rules.
    ``limit_price`` set means an IOC limit at that price (on the venue's tick); ``None`` means a
    market order, which venues without true market orders (Hyperliquid) send as an IOC limit
    bounded around ``reference_price``.
    """

    client_id: str
    symbol: str
    side: Literal["buy", "sell"]
    qty: Decimal
    reduce_only: bool
    limit_price: Decimal | None
    reference_price: Decimal


@dataclass(frozen=True, slots=True)
class VenueOrder:
    """What the venue knows of one order. ``filled_qty`` is cumulative, in base units."""

    client_id: str
    state: OrderState
    filled_qty: Decimal = Decimal(0)
    avg_price: Decimal | None = None
    venue_order_id: str | None = None
    reason: RejectReason | None = None
    raw_code: str | None = None
    raw_message: str | None = None


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """The account as the venue reports it.

    ``equity`` is the margin balance: wallet balance plus unrealized PnL, in the settlement
    currency (never the bare wallet balance). ``positions`` maps symbol to signed size in base
    units (long > 0). ``one_way`` is False when the account is in hedge (dual side) mode.
    """

    equity: Decimal
    positions: dict[str, Decimal]
    one_way: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class AccountEvent:
    """A private-stream push: an order update, and/or fresh equity or positions."""

    order: VenueOrder | None = None
    equity: Decimal | None = None
    positions: dict[str, Decimal] = field(default_factory=dict)
    at: datetime | None = None


class ExecutionError(Exception):
    """Base of what an :class:`ExecutionClient` raises."""


class OutcomeUnknown(ExecutionError):
    """The request may or may not have reached the venue: query by client id before resending."""


class RateLimited(ExecutionError):
    """The venue asked us to slow down (HTTP 429/418, Bybit 10006, OKX 50011)."""

    def __init__(self, retry_after_s: float, message: str = "") -> None:
        super().__init__(message or f"rate limited, retry after {retry_after_s}s")
        self.retry_after_s = retry_after_s


class Expired(ExecutionError):
    """The order's ``valid_until`` passed before it left: nothing reached the venue."""


# The deadline of the order being placed, set by the executor around ``place``. A client
# checks it (``check_send_by``) at the last moment before the order itself leaves, after any
# wait inside ``place`` (a socket opening or logging in, a limiter), so that no wait can carry
# a stale order out. Outside ``place`` it is unset and nothing is checked.
SEND_BY: ContextVar[datetime | None] = ContextVar("send_by", default=None)
# The ``time.monotonic()`` until which the order being placed may leave without asking Redis
# whether its account was disconnected (the fence, ``app.venues.executor``); checked at the
# same last moment. Unset: the executor asked already.
FENCE_BY: ContextVar[float | None] = ContextVar("fence_by", default=None)
# Whether this instance surely still holds the lease of the order's account (the executor's
# ``Hold``); checked at the same last moment. An executor whose lease lapsed sends nothing
# more: another instance may own the account, and claim the order, by then.
HELD: ContextVar[Callable[[], bool] | None] = ContextVar("held", default=None)


def check_send_by() -> None:
    """Raise Expired when the order being placed is past its deadline, FenceUnchecked when
    it may no longer leave without a look at its account's fence, LeaseLapsed when this
    instance may no longer hold its account."""
    # The lease first: an executor that may have lost the account reports nothing of the
    # order either (not even expired): its next owner answers for it.
    held = HELD.get()
    if held is not None and not held():
        raise LeaseLapsed("this instance's lease of the account lapsed before the order left")
    deadline = SEND_BY.get()
    if deadline is not None and datetime.now(UTC) >= deadline:
        raise Expired(f"valid_until {deadline.isoformat()} passed before the order was sent")
    fence_by = FENCE_BY.get()
    if fence_by is not None and time.monotonic() >= fence_by:
        raise FenceUnchecked("the order's read is too old to send it unchecked")


class FenceUnchecked(ExecutionError):
    """The order's read is too old for it to leave without asking whether its account was
    disconnected (``FENCE_BY``): nothing was sent."""


class LeaseLapsed(ExecutionError):
    """This instance's lease of the account may have lapsed (``HELD``): nothing was sent."""


class AccountError(ExecutionError):
    """The account cannot be traded as configured (bad key, hedge mode, ...): status ``error``."""


class ExecutionClient(Protocol):
    """One follower account on one venue. Implementations sign every request themselves."""

    venue: str

    def client_order_id(self, order_id: str) -> str:
        """The venue-legal client order id for ``order_id``: deterministic, collision-free."""
        ...

    async def place(self, request: OrderRequest) -> VenueOrder:
        """Place the order. A venue refusal returns ``state=REJECTED`` with its reason.

        Raises :class:`OutcomeUnknown` when the request may have been applied, and
        :class:`RateLimited` when it surely was not and the venue wants us to wait. A duplicate
        client id refusal is not a rejection: return the existing order (query it).
        """
        ...

    async def query(self, symbol: str, client_id: str) -> VenueOrder | None:
        """The order with this client id, or None when the venue has never seen it."""
        ...

    async def account(self) -> AccountSnapshot:
        """Equity, positions and position mode, read over REST."""
        ...

    def events(self) -> AsyncIterator[AccountEvent]:
        """The account's private stream; ends (or raises) when the connection drops."""
        ...

    async def close(self) -> None: ...
