"""Bybit v5's answers and stream messages, as msgspec Structs (the fields we read, named as
Bybit names them). Amounts stay strings here: Bybit sends ``""`` for "none" (an order's
``avgPrice`` before a fill), which the client turns into Decimal or None itself.

Every envelope is ``{"retCode", "retMsg", "result", ...}``; a refusal carries ``result: {}``,
so every result field has a default.
"""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec

T = TypeVar("T")


class Envelope(msgspec.Struct, Generic[T]):
    retCode: int
    retMsg: str = ""
    result: T | None = None


class Created(msgspec.Struct):
    """POST /v5/order/create."""

    orderId: str = ""
    orderLinkId: str = ""


class Order(msgspec.Struct):
    """A row of GET /v5/order/realtime or /v5/order/history, or of the ``order`` topic."""

    orderLinkId: str = ""
    orderId: str = ""
    symbol: str = ""
    orderStatus: str = ""
    cumExecQty: str = "0"
    avgPrice: str = ""
    rejectReason: str = ""
    category: str = "linear"


class OrderList(msgspec.Struct):
    rows: list[Order] = msgspec.field(default_factory=list, name="list")
    nextPageCursor: str = ""


class Coin(msgspec.Struct):
    coin: str = ""
    equity: str = ""


class Wallet(msgspec.Struct):
    """An account of GET /v5/account/wallet-balance, or a row of the ``wallet`` topic."""

    accountType: str = ""
    totalMarginBalance: str = ""
    totalEquity: str = ""
    coin: list[Coin] = msgspec.field(default_factory=list)


class WalletList(msgspec.Struct):
    rows: list[Wallet] = msgspec.field(default_factory=list, name="list")


class Position(msgspec.Struct):
    """A row of GET /v5/position/list, or of the ``position`` topic."""

    symbol: str = ""
    side: str = ""
    size: str = "0"
    positionIdx: int = 0
    category: str = "linear"


class PositionList(msgspec.Struct):
    rows: list[Position] = msgspec.field(default_factory=list, name="list")
    nextPageCursor: str = ""


class Execution(msgspec.Struct):
    """A row of the ``execution`` topic."""

    orderLinkId: str = ""
    orderId: str = ""
    symbol: str = ""
    orderQty: str = "0"
    leavesQty: str = "0"
    execQty: str = "0"
    execPrice: str = "0"
    execType: str = ""
    category: str = "linear"


class PriceFilter(msgspec.Struct):
    tickSize: str


class LotSizeFilter(msgspec.Struct):
    qtyStep: str
    minOrderQty: str = "0"
    minNotionalValue: str = "0"


class Instrument(msgspec.Struct):
    """A row of GET /v5/market/instruments-info (category linear)."""

    symbol: str
    priceFilter: PriceFilter
    lotSizeFilter: LotSizeFilter
    status: str = "Trading"


class InstrumentList(msgspec.Struct):
    rows: list[Instrument] = msgspec.field(default_factory=list, name="list")


class StreamMessage(msgspec.Struct):
    """Any private-stream message: a topic push (``topic``, ``data``) or a reply (``op``)."""

    topic: str = ""
    op: str = ""
    success: bool | None = None
    ret_msg: str = ""
    creationTime: int = 0
    data: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"null"))


CREATED = msgspec.json.Decoder(Envelope[Created])
ORDERS = msgspec.json.Decoder(Envelope[OrderList])
WALLETS = msgspec.json.Decoder(Envelope[WalletList])
POSITIONS = msgspec.json.Decoder(Envelope[PositionList])
INSTRUMENTS = msgspec.json.Decoder(Envelope[InstrumentList])
BARE = msgspec.json.Decoder(Envelope[msgspec.Raw])
STREAM = msgspec.json.Decoder(StreamMessage)
ORDER_ROWS = msgspec.json.Decoder(list[Order])
EXECUTION_ROWS = msgspec.json.Decoder(list[Execution])
POSITION_ROWS = msgspec.json.Decoder(list[Position])
WALLET_ROWS = msgspec.json.Decoder(list[Wallet])
