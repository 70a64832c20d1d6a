"""Hyperliquid's wire formats for trading (msgspec Structs), from its API docs
(hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api): exchange-endpoint (``order``
action and its per-order statuses), info-endpoint (``meta``, ``orderStatus``,
``clearinghouseState``, ``userFillsByTime``) and websocket/subscriptions (``orderUpdates``:
``WsOrder``; ``userFills``: ``WsUserFills`` / ``WsFill``).

Amounts arrive as decimal strings and are decoded straight to Decimal.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

# -- requests ---------------------------------------------------------------------------------


class Signature(msgspec.Struct, frozen=True):
    r: str
    s: str
    v: int


class OrderWire(msgspec.Struct, frozen=True, omit_defaults=True):
    """One order of an ``order`` action. Field order is the signed msgpack's key order."""

    a: int  # asset index: the coin's position in meta.universe
    b: bool  # is buy
    p: str  # limit price, no trailing zeros
    s: str  # size in base units, no trailing zeros
    r: bool  # reduce only
    t: dict[str, Any]  # {"limit": {"tif": "Ioc"}}
    c: str | None = None  # cloid


class OrderAction(msgspec.Struct, frozen=True):
    orders: list[OrderWire]
    type: str = "order"
    grouping: str = "na"

    def wire(self) -> dict[str, Any]:
        """The action as the venue hashes it: keys in the SDK's order (type, orders, grouping)."""
        return {
            "type": self.type,
            "orders": [msgspec.to_builtins(order) for order in self.orders],
            "grouping": self.grouping,
        }


# -- exchange responses -----------------------------------------------------------------------


class Resting(msgspec.Struct, frozen=True):
    oid: int
    cloid: str | None = None


class Filled(msgspec.Struct, frozen=True, rename="camel"):
    total_sz: Decimal
    avg_px: Decimal
    oid: int
    cloid: str | None = None


class OrderStatusEntry(msgspec.Struct, frozen=True):
    """One order's outcome: exactly one of ``resting``, ``filled``, ``error`` is set."""

    resting: Resting | None = None
    filled: Filled | None = None
    error: str | None = None


class OrderData(msgspec.Struct, frozen=True):
    # Bare strings are "waitingForFill" / "waitingForTrigger".
    statuses: list[OrderStatusEntry | str]


class ExchangeOk(msgspec.Struct, frozen=True):
    type: str
    data: OrderData | None = None


class ExchangeResponse(msgspec.Struct, frozen=True):
    """``{"status": "ok", "response": {...}}`` or ``{"status": "err", "response": "<why>"}``."""

    status: str
    response: ExchangeOk | str


# -- info responses ---------------------------------------------------------------------------


class AssetMeta(msgspec.Struct, frozen=True, rename="camel"):
    name: str
    sz_decimals: int
    is_delisted: bool | None = None


class Meta(msgspec.Struct, frozen=True):
    universe: list[AssetMeta]


class BasicOrder(msgspec.Struct, frozen=True, rename="camel"):
    """``WsBasicOrder`` (and the order of an ``orderStatus`` answer): ``sz`` is what remains."""

    coin: str
    side: str
    limit_px: Decimal
    sz: Decimal
    oid: int
    timestamp: int
    orig_sz: Decimal
    cloid: str | None = None
    tif: str | None = None


class OrderWithStatus(msgspec.Struct, frozen=True, rename="camel"):
    """``WsOrder``: an order and its processing status (``open``, ``filled``, ``canceled``,
    ``...Rejected``, ``...Canceled``)."""

    order: BasicOrder
    status: str
    status_timestamp: int


class OrderStatusResponse(msgspec.Struct, frozen=True):
    """``{"status": "order", "order": {...}}`` or ``{"status": "unknownOid"}``."""

    status: str
    order: OrderWithStatus | None = None


class Position(msgspec.Struct, frozen=True):
    coin: str
    szi: Decimal


class AssetPosition(msgspec.Struct, frozen=True):
    position: Position
    type: str = "oneWay"


class MarginSummary(msgspec.Struct, frozen=True, rename="camel"):
    account_value: Decimal


class ClearinghouseState(msgspec.Struct, frozen=True, rename="camel"):
    margin_summary: MarginSummary
    asset_positions: list[AssetPosition]
    time: int | None = None


class UserFill(msgspec.Struct, frozen=True, rename="camel"):
    """A ``WsFill`` (or a ``userFillsByTime`` row): one execution of order ``oid``."""

    coin: str
    px: Decimal
    sz: Decimal
    side: str
    time: int
    oid: int
    tid: int
    start_position: Decimal | None = None


# -- websocket --------------------------------------------------------------------------------


class WsMessage(msgspec.Struct, frozen=True):
    channel: str
    data: msgspec.Raw = msgspec.Raw(b"null")


class WsUserFills(msgspec.Struct, frozen=True, rename="camel"):
    user: str
    fills: list[UserFill]
    is_snapshot: bool = False
