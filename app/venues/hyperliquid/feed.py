"""Hyperliquid perpetuals: a leader is followed by its public address, no credentials.

Formats from Hyperliquid's API docs (hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api):
websocket/subscriptions (``userFills``, ``WsUserFills``, ``WsFill``, ``FillLiquidation``),
websocket/timeouts-and-heartbeats (``{"method": "ping"}`` → ``{"channel": "pong"}``; the server
closes a connection it has sent nothing to for 60 s), info-endpoint (``userFillsByTime``: at
most 2000 fills per response, only the 10000 most recent fills; "use the last returned
timestamp as the next startTime for pagination") and info-endpoint/perpetuals
(``clearinghouseState``).

What is a fill here: a ``WsFill`` of a perpetual. Spot fills (coin ``@107`` or ``PURR/USDC``)
move no perp position and are skipped, as are the non-trade rows (spot dust conversions,
settlements). The first ``userFills`` message of a subscription is flagged ``isSnapshot``: it is
history, which the backfill covers exactly once, so it yields nothing.

Fill ids: the trade id ``tid``. Old fills carry none; their id is derived from what they do
carry (``hash``, ``oid``, ``time``, ``px``, ``sz``, ``startPosition``): fills of one order or
one transaction share a hash and an oid, but never all six, since each fill moves the position
the next one starts from. Every fill's ``startPosition`` is the venue's position before it:
the listener resyncs the leader when its tracked position disagrees.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

import msgspec

from app.domain.model import Fill, Side
from app.ingest.frames import FrameError
from app.venues.feed import (
    BadRow,
    Item,
    VenueAdapter,
    VenueError,
    VenuePosition,
    WebSocketLike,
)
from app.venues.parsing import (
    decimal,
    epoch_ms,
    load_json,
    load_object,
    positive_decimal,
    symbol,
    text,
    to_epoch_ms,
)

# userFillsByTime returns at most this many fills per response (info-endpoint docs).
PAGE_LIMIT = 2000
# A runaway guard only: the venue keeps the 10000 most recent fills, i.e. about 6 pages.
MAX_PAGES = 100
_SIDES = {"B": Side.BUY, "A": Side.SELL}
# ``dir`` is documented as a display string; these are the values the venue sends for perp
# trades, with the side each implies (a contradiction means a corrupt fill).
_DIR_SIDE = {
    "Open Long": Side.BUY,
    "Close Short": Side.BUY,
    "Short > Long": Side.BUY,
    "Open Short": Side.SELL,
    "Close Long": Side.SELL,
    "Long > Short": Side.SELL,
}
# The sign startPosition must have before a fill with this ``dir`` (1 long, -1 short, 0 flat
# allowed too for opens).
_DIR_START = {
    "Open Long": (0, 1),
    "Open Short": (0, -1),
    "Close Long": (1,),
    "Long > Short": (1,),
    "Close Short": (-1,),
    "Short > Long": (-1,),
}
# Rows in the fill history that are not trades of a perp position.
_NOT_TRADES = frozenset({"Spot Dust Conversion", "Settlement"})
_ADL = "Auto-Deleveraging"


def _is_spot(coin: str) -> bool:
    # Spot pairs are "@{index}" or "PURR/USDC"; perps are names ("BTC", HIP-3 "xyz:XYZ100").
    return coin.startswith("@") or "/" in coin


def _sign(value: Decimal) -> int:
    return (value > 0) - (value < 0)


class HyperliquidAdapter(VenueAdapter):
    kind: ClassVar[str] = "hyperliquid"
    # Well inside the 60 s after which the venue closes a connection it has not written to.
    app_ping_interval_s: ClassVar[float | None] = 30.0

    @property
    def address(self) -> str:
        # Addresses are case-insensitive hex; the venue answers in lower case.
        return str(self.config["address"]).lower()

    async def ws_url(self) -> str:
        return str(self.config["ws_url"])

    def _subscription(self) -> dict[str, str]:
        return {"type": "userFills", "user": self.address}

    async def on_open(self, ws: WebSocketLike) -> None:
        await ws.send(
            msgspec.json.encode(
                {"method": "subscribe", "subscription": self._subscription()}
            ).decode()
        )
        while True:
            try:
                message = load_json(await ws.recv())
            except FrameError:
                continue
            if not isinstance(message, dict):
                continue
            channel = message.get("channel")
            if channel == "error":
                raise VenueError(
                    f"userFills subscription refused: {str(message.get('data'))[:200]}"
                )
            if channel != "subscriptionResponse":
                continue  # a pong, or the snapshot (history: the backfill covers it)
            data = message.get("data")
            subscription = data.get("subscription") if isinstance(data, dict) else None
            if isinstance(subscription, dict) and subscription.get("type") == "userFills":
                user = subscription.get("user")
                if isinstance(user, str) and user.lower() == self.address:
                    return

    def ping_frame(self) -> str | None:
        return '{"method":"ping"}'

    def parse(self, raw: str | bytes, received_at: datetime) -> list[Item]:
        message = load_object(raw)
        channel = message.get("channel")
        if channel == "error":
            raise FrameError(f"venue error: {str(message.get('data'))[:200]}")
        if channel != "userFills":
            return []  # pong, subscriptionResponse, other channels
        data = message.get("data")
        if not isinstance(data, dict):
            raise FrameError("userFills: data must be an object")
        if data.get("isSnapshot") is True:
            return []
        user = data.get("user")
        if not isinstance(user, str) or user.lower() != self.address:
            raise FrameError("userFills: user is not the leader's address")
        items = data.get("fills")
        if not isinstance(items, list):
            raise FrameError("userFills: fills must be a list")
        fills: list[Item] = []
        for index, item in enumerate(items):
            try:
                _, _, fill = self._row(item, f"fills[{index}]", received_at)
            except FrameError as exc:
                fills.append(BadRow.of(item, exc))
                continue
            if fill is not None:
                fills.append(fill)
        return fills

    def _row(self, item: object, where: str, received_at: datetime) -> tuple[int, str, Fill | None]:
        """(time ms, fill id, the Fill or None when the row is not a perp trade) of a WsFill."""
        if not isinstance(item, dict):
            raise FrameError(f"{where}: expected an object")
        time_ms = item.get("time")
        if isinstance(time_ms, bool) or not isinstance(time_ms, int):
            raise FrameError(f"{where}.time: expected epoch milliseconds")
        fill_id = self._fill_id(item, where)
        coin = text(item.get("coin"), f"{where}.coin")
        direction = text(item.get("dir"), f"{where}.dir")
        if _is_spot(coin) or direction in _NOT_TRADES:
            return time_ms, fill_id, None
        event_at = epoch_ms(time_ms, f"{where}.time", received_at)
        side = _SIDES.get(str(item.get("side")))
        if side is None:
            raise FrameError(f"{where}.side: expected B or A")
        qty = positive_decimal(item.get("sz"), f"{where}.sz")
        start = decimal(item.get("startPosition"), f"{where}.startPosition")
        self._check_direction(direction, side, start, where)
        fee = item.get("fee")
        fee_token = item.get("feeToken")
        fill = Fill(
            leader_id=self.leader_id,
            fill_id=fill_id,
            symbol=symbol(coin, f"{where}.coin"),
            side=side,
            qty=qty,
            price=positive_decimal(item.get("px"), f"{where}.px"),
            event_at=event_at,
            received_at=received_at,
            # The venue's fee is a cost already: negative is a maker rebate.
            fee=None if fee is None else decimal(fee, f"{where}.fee"),
            fee_asset=None if fee_token is None else text(fee_token, f"{where}.feeToken"),
            # A close: the fill shrinks the position without crossing zero.
            reduce_only=_sign(start) == (-1 if side is Side.BUY else 1) and qty <= abs(start),
            liquidation=self._forced(item, direction, where),
        )
        self.remember_start(fill_id, start)
        return time_ms, fill_id, fill

    @staticmethod
    def _fill_id(item: dict[str, Any], where: str) -> str:
        """The trade id; for an old fill without one, a digest of the fields it carries."""
        tid = item.get("tid")
        if tid is not None:
            if isinstance(tid, bool) or not isinstance(tid, int) or tid < 0:
                raise FrameError(f"{where}.tid: expected a trade id")
            return str(tid)
        parts = [item.get(name) for name in ("hash", "oid", "time", "px", "sz", "startPosition")]
        if any(part is None or isinstance(part, dict | list) for part in parts):
            raise FrameError(
                f"{where}: no tid, and not all of hash, oid, time, px, sz, startPosition"
            )
        digest = hashlib.sha256("|".join(str(part) for part in parts).encode()).hexdigest()
        # "h" and hex: never a decimal tid, so a derived id cannot collide with a real one.
        return "h" + digest[:40]

    @staticmethod
    def _check_direction(direction: str, side: Side, start: Decimal, where: str) -> None:
        expected = _DIR_SIDE.get(direction)
        if direction.startswith("Liquidated"):
            # "Liquidated Cross Long" closes a long (a sell), "... Short" a short.
            expected = Side.SELL if direction.endswith("Long") else Side.BUY
        if expected is not None and expected is not side:
            raise FrameError(f"{where}: side {side.value} contradicts dir {direction!r}")
        signs = _DIR_START.get(direction)
        if signs is not None and _sign(start) not in signs:
            raise FrameError(f"{where}: startPosition {start} contradicts dir {direction!r}")

    def _forced(self, item: dict[str, Any], direction: str, where: str) -> bool:
        """Was the leader's position liquidated or auto-deleveraged by this fill?

        The ``liquidation`` block rides on both sides of a liquidation trade: only when its
        ``liquidatedUser`` is the leader was the leader's own position forced closed (a leader
        absorbing someone else's liquidation made an ordinary trade).
        """
        if direction.startswith("Liquidated") or direction == _ADL:
            return True
        block = item.get("liquidation")
        if block is None:
            return False
        if not isinstance(block, dict):
            raise FrameError(f"{where}.liquidation: expected an object")
        user = block.get("liquidatedUser")
        return isinstance(user, str) and user.lower() == self.address

    # -- REST ---------------------------------------------------------------------------------

    async def _info(self, body: dict[str, Any]) -> Any:
        response = await self.rest("POST", "/info", json=body)
        if response.status_code != 200:
            raise VenueError(f"{body['type']}: HTTP {response.status_code} {response.text[:200]}")
        try:
            return load_json(response.content)
        except FrameError as exc:
            raise VenueError(f"{body['type']}: {exc}") from exc

    async def _state(self) -> dict[str, Any]:
        state = await self._info({"type": "clearinghouseState", "user": self.address})
        if not isinstance(state, dict):
            raise VenueError("clearinghouseState: expected an object")
        return state

    async def fetch_equity(self) -> Decimal:
        state = await self._state()
        summary = state.get("marginSummary")
        try:
            if not isinstance(summary, dict):
                raise FrameError("marginSummary: expected an object")
            # accountValue: collateral plus unrealized PnL of every perp position.
            return decimal(summary.get("accountValue"), "marginSummary.accountValue")
        except FrameError as exc:
            raise VenueError(f"clearinghouseState: {exc}") from exc

    async def positions(self) -> list[VenuePosition]:
        state = await self._state()
        rows = state.get("assetPositions")
        positions: list[VenuePosition] = []
        try:
            if not isinstance(rows, list):
                raise FrameError("assetPositions: expected a list")
            for index, row in enumerate(rows):
                position = row.get("position") if isinstance(row, dict) else None
                if not isinstance(position, dict):
                    raise FrameError(f"assetPositions[{index}].position: expected an object")
                where = f"assetPositions[{index}].position"
                size = decimal(position.get("szi"), f"{where}.szi")
                if size != 0:
                    name = symbol(position.get("coin"), f"{where}.coin")
                    positions.append(VenuePosition(name, size, _mark(position, size)))
        except FrameError as exc:
            raise VenueError(f"clearinghouseState: {exc}") from exc
        return positions

    async def backfill(self, since: datetime, received_at: datetime) -> AsyncIterator[list[Item]]:
        """Page userFillsByTime forward from ``since``: each page starts at the last time seen.

        Several fills can share a millisecond and a page may end inside it, so the next page
        starts at that same millisecond and repeats are dropped by trade id. No endTime: the
        venue's own "now" ends the range, so a fill made just before the subscription is never
        cut off by a clock difference between us and the venue.
        """
        start = to_epoch_ms(since)
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            page = await self._info(
                {
                    "type": "userFillsByTime",
                    "user": self.address,
                    "startTime": start,
                    "aggregateByTime": False,
                }
            )
            if not isinstance(page, list):
                raise VenueError("userFillsByTime: expected a list")
            fresh = 0
            last = start
            # (time, tid, index in the page): fills of one millisecond in trade id order;
            # fills without a tid keep the venue's order.
            rows: list[tuple[int, int, int, Item]] = []
            for index, item in enumerate(page):
                try:
                    time_ms, key, fill = self._row(item, f"userFillsByTime[{index}]", received_at)
                except FrameError as exc:
                    key = _row_key(item)
                    if key not in seen:
                        seen.add(key)
                        rows.append((_row_time(item, last), 0, index, BadRow.of(item, exc)))
                    continue
                last = max(last, time_ms)
                if key in seen:
                    continue
                seen.add(key)
                fresh += 1
                if fill is not None and fill.event_at >= since:
                    rows.append((time_ms, int(key) if key.isdigit() else 0, index, fill))
            rows.sort(key=lambda row: row[:3])
            yield [row[3] for row in rows]
            if len(page) < PAGE_LIMIT:
                return
            # A full page: go on from its last millisecond; if that brought nothing new, the
            # page was one millisecond only and the venue cannot page inside it: step past.
            start = last if fresh else last + 1
        raise VenueError(f"userFillsByTime: more than {MAX_PAGES} pages")


def _mark(position: dict[str, Any], size: Decimal) -> Decimal | None:
    """The mark price (positionValue / |szi|), or the entry price without a value."""
    try:
        value = decimal(position.get("positionValue"), "positionValue")
        if value > 0:
            return value / abs(size)
        return positive_decimal(position.get("entryPx"), "entryPx")
    except FrameError:
        return None


def _row_key(item: object) -> str:
    return "bad:" + hashlib.sha256(repr(item).encode()).hexdigest()[:32]


def _row_time(item: object, default: int) -> int:
    time_ms = item.get("time") if isinstance(item, dict) else None
    return time_ms if isinstance(time_ms, int) and not isinstance(time_ms, bool) else default
