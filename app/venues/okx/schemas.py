"""OKX v5's answers and private-stream messages, as msgspec Structs (the fields we read, named
as OKX names them). Amounts stay strings: OKX sends ``""`` for "none" (``avgPx`` before a fill).

Every REST answer is ``{"code", "msg", "data": [...]}``.
"""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec

T = TypeVar("T")


class Envelope(msgspec.Struct, Generic[T]):
    code: str
    msg: str = ""
    data: list[T] = msgspec.field(default_factory=list)


class Ack(msgspec.Struct):
    """A row of POST /api/v5/trade/order's answer."""

    clOrdId: str = ""
    ordId: str = ""
    sCode: str = ""
    sMsg: str = ""
    subCode: str = ""


class Order(msgspec.Struct):
    """GET /api/v5/trade/order, or a row of the ``orders`` channel."""

    instId: str = ""
    clOrdId: str = ""
    ordId: str = ""
    state: str = ""
    accFillSz: str = "0"
    avgPx: str = ""
    instType: str = "SWAP"
    code: str = ""
    msg: str = ""


class Balance(msgspec.Struct):
    totalEq: str = ""


class Position(msgspec.Struct):
    instId: str = ""
    instType: str = "SWAP"
    pos: str = "0"
    posSide: str = "net"


class Config(msgspec.Struct):
    posMode: str = ""
    acctLv: str = ""


class Instrument(msgspec.Struct):
    instId: str
    ctVal: str = ""
    lotSz: str = ""
    minSz: str = ""
    tickSz: str = ""
    ctType: str = ""
    state: str = "live"


class StreamArg(msgspec.Struct):
    channel: str = ""


class StreamMessage(msgspec.Struct):
    """Any private-stream message: a push (``arg``, ``data``) or an event (login, error...)."""

    event: str = ""
    code: str = ""
    msg: str = ""
    arg: StreamArg | None = None
    data: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"null"))


ACKS = msgspec.json.Decoder(Envelope[Ack])
ORDERS = msgspec.json.Decoder(Envelope[Order])
BALANCES = msgspec.json.Decoder(Envelope[Balance])
POSITIONS = msgspec.json.Decoder(Envelope[Position])
CONFIGS = msgspec.json.Decoder(Envelope[Config])
INSTRUMENTS = msgspec.json.Decoder(Envelope[Instrument])
STREAM = msgspec.json.Decoder(StreamMessage)
ORDER_ROWS = msgspec.json.Decoder(list[Order])
POSITION_ROWS = msgspec.json.Decoder(list[Position])
BALANCE_ROWS = msgspec.json.Decoder(list[Balance])
