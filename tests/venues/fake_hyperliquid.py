"""A loopback Hyperliquid: the userFills websocket subscription and the /info REST endpoint.

Speaks the formats of hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api (see
tests/venues/fixtures/hyperliquid/README.md): subscribe → ``subscriptionResponse`` ack, then
the ``isSnapshot`` history message, then live ``userFills``; ``{"method": "ping"}`` →
``{"channel": "pong"}``; ``userFillsByTime`` with the venue's paging (oldest first from
``startTime`` inclusive, at most 2000 per response, only the 10000 most recent fills) and
``clearinghouseState``. The fake keeps the leader's positions and derives each fill's
``startPosition`` and ``dir`` from them, as the venue does.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.websockets import WebSocket

from tests.venues.harness import FakeVenue

ADDRESS = "0x5e9ee1089755c3435139848e47e6635505d5a13a"
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
PAGE_LIMIT = 2000
AVAILABLE = 10_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _dir(start: Decimal, buy: bool, size: Decimal) -> str:
    if start == 0 or (start > 0) == buy:
        return "Open Long" if buy else "Open Short"
    if size <= abs(start):
        return "Close Short" if buy else "Close Long"
    return "Short > Long" if buy else "Long > Short"


@dataclass
class FakeHyperliquid(FakeVenue):
    address: str = ADDRESS
    account_value: str = "100000"
    page_limit: int = PAGE_LIMIT
    # Every fill of the account, as the venue keeps it (WsFill dicts), in time order.
    history: list[dict[str, Any]] = field(default_factory=list)
    positions: dict[str, Decimal] = field(default_factory=dict)
    # Mark price per coin (clearinghouseState's entryPx and positionValue / |szi|).
    marks: dict[str, str] = field(default_factory=dict)
    # How many recent fills the isSnapshot message carries.
    snapshot_limit: int = PAGE_LIMIT
    # Served verbatim as clearinghouseState when set (e.g. the documented example).
    state: dict[str, Any] | None = None
    # Refuse subscriptions with the venue's error message.
    refuse: bool = False
    # While cleared, subscriptions wait for their ack (fills can be made "during" a reconnect).
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    _tids: itertools.count[int] = field(default_factory=lambda: itertools.count(900_000_000_001))
    _oids: itertools.count[int] = field(default_factory=lambda: itertools.count(40_000_000_001))

    def __post_init__(self) -> None:
        self.gate.set()

    # -- making fills -------------------------------------------------------------------------

    def fill(
        self,
        coin: str,
        side: str,
        sz: str,
        px: str,
        *,
        oid: int | None = None,
        at_ms: int | None = None,
        liquidated: bool = False,
        adl: bool = False,
    ) -> dict[str, Any]:
        """A WsFill of the leader, applied to its position, with the venue's fields."""
        buy = side == "B"
        size = Decimal(sz)
        start = self.positions.get(coin, Decimal(0))
        direction = _dir(start, buy, size)
        if liquidated:
            direction = f"Liquidated Cross {'Short' if buy else 'Long'}"
        elif adl:
            direction = "Auto-Deleveraging"
        fill: dict[str, Any] = {
            "coin": coin,
            "px": px,
            "sz": sz,
            "side": side,
            "time": at_ms if at_ms is not None else now_ms(),
            "startPosition": str(start),
            "dir": direction,
            "closedPnl": "0.0",
            "hash": "0x" + "ab" * 32,
            "oid": oid if oid is not None else next(self._oids),
            "crossed": True,
            "fee": str((size * Decimal(px) * Decimal("0.00045")).quantize(Decimal("0.000001"))),
            "tid": next(self._tids),
            "feeToken": "USDC",
        }
        if liquidated:
            fill["liquidation"] = {
                "liquidatedUser": self.address,
                "markPx": px,
                "method": "market",
            }
        if not coin.startswith("@") and "/" not in coin:
            end = start + size if buy else start - size
            self.positions[coin] = end
        return fill

    def add(self, *fills: dict[str, Any]) -> None:
        """Fills made while nobody listens: in the history only (the backfill finds them)."""
        self.history.extend(fills)
        self.history.sort(key=lambda f: (f["time"], f.get("tid", 0)))

    async def emit(self, *fills: dict[str, Any]) -> None:
        """Fills made now: in the history and pushed as one userFills message."""
        self.add(*fills)
        await self.push(self.message(list(fills)))

    def message(self, fills: list[dict[str, Any]], snapshot: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {"user": self.address, "fills": fills}
        if snapshot:
            data = {"isSnapshot": True, **data}
        return {"channel": "userFills", "data": data}

    # -- websocket ----------------------------------------------------------------------------

    async def on_message(self, ws: WebSocket, message: Any) -> None:
        if not isinstance(message, dict):
            await self.send(ws, {"channel": "error", "data": f"Invalid message: {message}"})
            return
        if message.get("method") == "ping":
            await self.send(ws, {"channel": "pong"})
            return
        subscription = message.get("subscription")
        if message.get("method") != "subscribe" or not isinstance(subscription, dict):
            await self.send(ws, {"channel": "error", "data": f"Invalid message: {message}"})
            return
        user = subscription.get("user")
        if (
            self.refuse
            or subscription.get("type") != "userFills"
            or not isinstance(user, str)
            or not _ADDRESS.match(user)
        ):
            refusal = f"Invalid subscription {json.dumps(subscription)}"
            await self.send(ws, {"channel": "error", "data": refusal})
            return
        await self.gate.wait()
        await self.send(ws, {"channel": "subscriptionResponse", "data": message})
        # The ack comes with a snapshot of recent fills, tagged isSnapshot.
        await self.send(ws, self.message(self.history[-self.snapshot_limit :], snapshot=True))
        self.mark_subscribed()

    # -- REST ---------------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [Route("/info", self._info, methods=["POST"])]

    async def _info(self, request: Request) -> Response:
        call = await self.record(request)
        try:
            body = json.loads(call.body)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _bad_body()
        user = body.get("user")
        if not isinstance(user, str) or not _ADDRESS.match(user):
            return _bad_body()
        mine = user.lower() == self.address.lower()
        if body.get("type") == "clearinghouseState":
            if not mine:
                return JSONResponse(_empty_state())
            return JSONResponse(self.state if self.state is not None else self._state())
        if body.get("type") == "userFillsByTime":
            start = body.get("startTime")
            end = body.get("endTime")
            if not isinstance(start, int) or not (end is None or isinstance(end, int)):
                return _bad_body()
            available = self.history[-AVAILABLE:] if mine else []
            upper = end if end is not None else now_ms()
            rows = [f for f in available if start <= f["time"] <= upper]
            return JSONResponse(rows[: self.page_limit])
        return _bad_body()

    def _state(self) -> dict[str, Any]:
        positions = [
            {
                "position": {
                    "coin": coin,
                    "cumFunding": {"allTime": "0.0", "sinceChange": "0.0", "sinceOpen": "0.0"},
                    "entryPx": self.marks.get(coin, "1.0"),
                    "leverage": {"rawUsd": "0.0", "type": "cross", "value": 20},
                    "liquidationPx": None,
                    "marginUsed": "0.0",
                    "maxLeverage": 50,
                    "positionValue": str(abs(size) * Decimal(self.marks.get(coin, "0"))),
                    "returnOnEquity": "0.0",
                    "szi": str(size),
                    "unrealizedPnl": "0.0",
                },
                "type": "oneWay",
            }
            for coin, size in self.positions.items()
            if size != 0
        ]
        summary = {
            "accountValue": self.account_value,
            "totalMarginUsed": "0.0",
            "totalNtlPos": "0.0",
            "totalRawUsd": self.account_value,
        }
        return {
            "assetPositions": positions,
            "crossMaintenanceMarginUsed": "0.0",
            "crossMarginSummary": summary,
            "marginSummary": summary,
            "time": now_ms(),
            "withdrawable": self.account_value,
        }


def _empty_state() -> dict[str, Any]:
    summary = {"accountValue": "0.0", "totalMarginUsed": "0.0", "totalNtlPos": "0.0"}
    return {
        "assetPositions": [],
        "crossMaintenanceMarginUsed": "0.0",
        "crossMarginSummary": {**summary, "totalRawUsd": "0.0"},
        "marginSummary": {**summary, "totalRawUsd": "0.0"},
        "time": now_ms(),
        "withdrawable": "0.0",
    }


def _bad_body() -> Response:
    # What the venue answers to a body it cannot read.
    return Response("Failed to deserialize the JSON body into the target type", status_code=422)
