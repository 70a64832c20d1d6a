"""OKX v5: fills from the private ``orders`` channel, backfill from the fills history.

Formats follow https://www.okx.com/docs-v5/en/ (WebSocket login and connect, the orders
channel, REST authentication, GET /api/v5/trade/fills and /fills-history, account balance
and positions, public instruments).

- Login: ``{"op": "login"}`` signed by ``signing.OkxSigner`` (the execution client's signer
  too); then one ``orders`` subscription for the configured
  instrument type. OKX drops a connection silent for 30 s: the text ``ping`` keeps it up and
  is answered by the text ``pong``.
- A fill is an order update with a ``tradeId`` and a non-zero ``fillSz``. OKX's trade ids are
  unique per instrument only, so the fill id is ``<instId>:<tradeId>``; OKX itself advises
  dropping repeated updates of one trade id, which the listener's dedupe does.
- Sizes of SWAP/FUTURES are contracts: base quantity = contracts x ``ctVal`` (read from the
  public instruments list, cached per instrument). Inverse (coin-margined) contracts are NOT
  copied: their ``ctVal`` is in USD, so the base exposure of one contract changes with the
  price, a leader's position in them cannot be followed in base units, and a full close
  would leave a residue. Their fills are logged (``okx_inverse_skipped``) and dropped.
- Liquidations and ADL (order ``category`` live, fill ``subType`` in the history) are fills
  flagged ``liquidation``; futures delivery and other non-trades are not fills.

Past 400 lines on purpose: this is one ``VenueAdapter`` (app.venues.feed), the shape every
venue's leader feed has (stream, REST reads, backfill), and OKX asks more of each part than the
other venues do: contract sizes looked up per instrument, two fill histories merged and
ordered, and the subtypes that are not trades left out. The parts share the adapter's
contract cache and signed REST call.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any, Final
from urllib.parse import urlencode

import structlog

from app.domain.model import Fill, Side
from app.ingest.frames import FrameError, positive
from app.venues.feed import (
    BadRow,
    Item,
    StreamExpired,
    VenueAdapter,
    VenueError,
    VenuePosition,
    WebSocketLike,
)
from app.venues.okx.signing import OkxSigner
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

log = structlog.get_logger(__name__)

PAGE_LIMIT: Final = 100  # the documented maximum of both fills endpoints
MAX_PAGES: Final = 2_000  # 200k fills: a venue that never stops paging is an error
# GET /trade/fills holds the last 3 days; older fills only come from /fills-history
# (3 months). An hour of margin keeps a backfill near the edge on the safe side.
RECENT_WINDOW: Final = timedelta(days=3) - timedelta(hours=1)
# Seconds between pages, within the documented rate limits (fills: 60 requests per 2 s,
# fills-history: 10 per 2 s): a long backfill must not be cut short by a 429.
PAGE_INTERVAL_S: Final = {"/api/v5/trade/fills": 0.04, "/api/v5/trade/fills-history": 0.2}
LIQUIDATION_CATEGORIES: Final = frozenset({"full_liquidation", "partial_liquidation", "adl"})
# Order categories whose fills are not trades to copy (futures delivery settles a position).
NOT_TRADES: Final = frozenset({"delivery"})
# History subTypes: 1-6 order-book trades; 100-107 liquidations; 125-128 ADL. Block trades,
# spread trades, position moves, delivery and conversions are not on the orders channel:
# leaving them out keeps the backfill and the stream the same set of fills.
TRADE_SUBTYPES: Final = frozenset({"", "1", "2", "3", "4", "5", "6"})
LIQUIDATION_SUBTYPES: Final = frozenset({str(n) for n in (*range(100, 108), 125, 126, 127, 128)})
# Instrument types whose sizes are already base quantities (no contracts).
BASE_SIZED: Final = frozenset({"SPOT", "MARGIN"})


@dataclass(frozen=True, slots=True)
class Contract:
    """What one instrument's sizes mean: base units per contract, or not copyable."""

    ct_val: Decimal
    inverse: bool


class OkxAdapter(VenueAdapter):
    kind = "okx"
    # OKX closes a connection that carried nothing for 30 s; ping well before.
    app_ping_interval_s = 20.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._contracts: dict[str, Contract] = {}
        self._inst_type = str(self.config.get("inst_type", "SWAP"))

    # -- the stream ---------------------------------------------------------------------

    async def ws_url(self) -> str:
        return str(self.config["ws_url"])

    def ping_frame(self) -> str:
        return "ping"

    async def on_open(self, ws: WebSocketLike) -> None:
        # Fresh contract values on every connect: a new listing becomes known here.
        self.remember_instruments(
            await self._get("/api/v5/public/instruments", {"instType": self._inst_type}, False)
        )
        await ws.send(_dumps(self._signer.ws_login(int(datetime.now(UTC).timestamp()))))
        await _expect(ws, "login")
        channel = {"channel": "orders", "instType": self._inst_type}
        await ws.send(_dumps({"id": "orders", "op": "subscribe", "args": [channel]}))
        await _expect(ws, "subscribe")

    def parse(self, raw: str | bytes, received_at: datetime) -> list[Item]:
        if raw in ("pong", b"pong"):
            return []
        message = load_object(raw)
        event = message.get("event")
        if event == "error":
            # e.g. 60011 "Please log in": this connection is no use any more.
            raise StreamExpired(f"okx error {message.get('code')}: {message.get('msg')}")
        if event is not None:
            return []  # login/subscribe acks, notices
        arg = message.get("arg")
        if not isinstance(arg, dict) or arg.get("channel") != "orders":
            return []
        data = message.get("data")
        if not isinstance(data, list):
            raise FrameError("data: expected a list")
        fills: list[Item] = []
        for row in data:
            try:
                if not isinstance(row, dict):
                    raise FrameError("data: expected objects")
                fill = self._order_fill(row, received_at)
            except FrameError as exc:
                fills.append(BadRow.of(row, exc))
                continue
            if fill is not None:
                fills.append(fill)
        return fills

    def _order_fill(self, row: Mapping[str, Any], received_at: datetime) -> Fill | None:
        """The fill in one orders-channel update, or None for a status-only update."""
        if not row.get("tradeId"):
            return None  # placed, amended, canceled, or a market order's final state
        if decimal(row.get("fillSz"), "fillSz") == 0:
            return None
        category = row.get("category") or "normal"
        if category in NOT_TRADES:
            return None
        contract = self._contract(row)
        if contract is None:
            # Not in the list loaded at connect (a listing since): reconnect, reload, and
            # let the backfill bring this fill.
            raise VenueError(f"okx: no contract value for {row.get('instId')!r} yet")
        closing = _closing(row)
        reduce_only = row.get("reduceOnly") == "true" or bool(closing)
        return self._fill(
            row,
            contract,
            fee=row.get("fillFee"),
            fee_ccy=row.get("fillFeeCcy"),
            reduce_only=reduce_only,
            liquidation=category in LIQUIDATION_CATEGORIES,
            received_at=received_at,
        )

    def _fill(
        self,
        row: Mapping[str, Any],
        contract: Contract,
        *,
        fee: object,
        fee_ccy: object,
        reduce_only: bool | None,
        liquidation: bool,
        received_at: datetime,
    ) -> Fill | None:
        inst_id = symbol(row.get("instId"), "instId")
        if contract.inverse:
            log.warning("okx_inverse_skipped", leader_id=str(self.leader_id), inst_id=inst_id)
            return None
        side = row.get("side")
        if side not in ("buy", "sell"):
            raise FrameError("side: expected buy or sell")
        contracts = positive_decimal(row.get("fillSz"), "fillSz")
        fill_time = row.get("fillTime") or row.get("ts")
        return Fill(
            leader_id=self.leader_id,
            fill_id=f"{inst_id}:{text(row.get('tradeId'), 'tradeId', 64)}",
            symbol=inst_id,
            side=Side(side),
            qty=positive(contracts * contract.ct_val, "fillSz"),
            price=positive_decimal(row.get("fillPx"), "fillPx"),
            event_at=epoch_ms(fill_time, "fillTime", received_at),
            received_at=received_at,
            # OKX: negative is a fee charged, positive a rebate; ours: positive is a cost.
            fee=Decimal(0) - decimal(fee, "fee") if fee not in (None, "") else None,
            fee_asset=text(fee_ccy, "feeCcy", 16) if fee_ccy else None,
            reduce_only=reduce_only,
            liquidation=liquidation,
        )

    # -- contracts ----------------------------------------------------------------------

    def remember_instruments(self, rows: Iterable[Any]) -> None:
        """Cache the contract value of each instrument in a public instruments list."""
        for row in rows:
            if not isinstance(row, dict) or not row.get("ctVal"):
                continue  # spot rows, and instruments announced without values yet
            inst_id = symbol(row.get("instId"), "instId")
            self._contracts[inst_id] = Contract(
                ct_val=positive_decimal(row.get("ctVal"), "ctVal"),
                inverse=row.get("ctType") == "inverse",
            )

    def _contract(self, row: Mapping[str, Any]) -> Contract | None:
        if row.get("instType") in BASE_SIZED:
            return Contract(Decimal(1), inverse=False)
        return self._contracts.get(symbol(row.get("instId"), "instId"))

    async def _load_missing(self, inst_ids: Iterable[str]) -> None:
        """Look up instruments not cached yet (listed, or delisted, since the last connect)."""
        for inst_id in sorted(set(inst_ids) - self._contracts.keys()):
            try:
                rows = await self._get(
                    "/api/v5/public/instruments",
                    {"instType": self._inst_type, "instId": inst_id},
                    False,
                )
            except VenueError as exc:
                rows = []  # an expired future: unknown, reported below
                log.warning("okx_instrument_lookup_failed", inst_id=inst_id, error=str(exc))
            self.remember_instruments(rows)
            if inst_id not in self._contracts:
                log.error("okx_unknown_instrument", leader_id=str(self.leader_id), inst_id=inst_id)

    # -- REST ---------------------------------------------------------------------------

    async def fetch_equity(self) -> Decimal:
        rows = await self._get("/api/v5/account/balance", {})
        if not rows or not isinstance(rows[0], dict):
            raise VenueError("okx balance: no account")
        # totalEq: the account's equity in USD, unrealized PnL included.
        return decimal(rows[0].get("totalEq"), "totalEq")

    async def positions(self) -> list[VenuePosition]:
        rows = [
            row
            for row in await self._get("/api/v5/account/positions", {"instType": self._inst_type})
            if isinstance(row, dict)
        ]
        try:
            await self._load_missing(symbol(row.get("instId"), "instId") for row in rows)
            positions: dict[str, Decimal] = {}
            marks: dict[str, Decimal] = {}
            for row in rows:
                contract = self._contract(row)
                pos = decimal(row.get("pos"), "pos")
                if contract is None or contract.inverse or pos == 0:
                    continue
                # long/short mode: pos is positive on both sides; net mode: pos is signed.
                if row.get("posSide") == "short":
                    pos = -abs(pos)
                elif row.get("posSide") == "long":
                    pos = abs(pos)
                inst_id = symbol(row.get("instId"), "instId")
                positions[inst_id] = positions.get(inst_id, Decimal(0)) + pos * contract.ct_val
                for field in ("markPx", "avgPx"):
                    if row.get(field):
                        price = decimal(row.get(field), field)
                        if price > 0:
                            marks[inst_id] = price
                            break
        except FrameError as exc:
            raise VenueError(f"okx positions: {exc}") from exc
        return [
            VenuePosition(inst_id, qty, marks.get(inst_id))
            for inst_id, qty in positions.items()
            if qty != 0
        ]

    async def backfill(self, since: datetime, received_at: datetime) -> AsyncIterator[list[Item]]:
        """One batch: OKX pages newest first, so the range is read whole, then ordered."""
        since_ms = to_epoch_ms(since)
        rows: dict[tuple[str, str], Mapping[str, Any]] = {}
        bad: list[Item] = []

        def keep(row: Mapping[str, Any]) -> None:
            try:
                rows[_row_key(row)] = row
            except FrameError as exc:
                bad.append(BadRow.of(row, exc))

        if since < datetime.now(UTC) - RECENT_WINDOW:
            async for row in self._pages("/api/v5/trade/fills-history", since_ms):
                keep(row)
        async for row in self._pages("/api/v5/trade/fills", since_ms):
            keep(row)
        await self._load_missing(inst_id for inst_id, _ in rows)
        fills: list[Fill] = []
        for row in rows.values():
            try:
                fill = self.history_fill(row, received_at)
            except FrameError as exc:
                bad.append(BadRow.of(row, exc))
                continue
            if fill is not None and fill.event_at >= since:
                fills.append(fill)
        fills.sort(key=_order)
        yield [*bad, *fills]

    def history_fill(self, row: Mapping[str, Any], received_at: datetime) -> Fill | None:
        """The fill in one row of GET /trade/fills(-history), or None if it is not copied."""
        sub_type = str(row.get("subType") or "")
        if sub_type not in TRADE_SUBTYPES and sub_type not in LIQUIDATION_SUBTYPES:
            return None
        contract = self._contract(row)
        if contract is None:
            return None  # reported by _load_missing
        return self._fill(
            row,
            contract,
            fee=row.get("fee"),
            fee_ccy=row.get("feeCcy"),
            reduce_only=_closing(row),
            liquidation=sub_type in LIQUIDATION_SUBTYPES,
            received_at=received_at,
        )

    async def _pages(self, path: str, since_ms: int) -> AsyncIterator[Mapping[str, Any]]:
        """Every fill row of ``path`` stamped at or after ``since_ms``, newest first.

        Pages go back in time with ``after`` (older than that billId) and stop at a short
        page; ``begin`` bounds them (it filters on ``ts``, which is never before fillTime).
        """
        params = {"instType": self._inst_type, "begin": str(since_ms - 1)}
        params["limit"] = str(PAGE_LIMIT)
        for _ in range(MAX_PAGES):
            page = [row for row in await self._get(path, params) if isinstance(row, dict)]
            for row in page:
                yield row
            if len(page) < PAGE_LIMIT:
                return
            cursor = text(page[-1].get("billId"), "billId", 64)
            if cursor == params.get("after"):
                raise VenueError(f"okx {path}: paging did not advance")
            params["after"] = cursor
            await asyncio.sleep(PAGE_INTERVAL_S.get(path, 0.2))
        raise VenueError(f"okx {path}: more than {MAX_PAGES} pages")

    @cached_property
    def _signer(self) -> OkxSigner:
        credentials = self.credentials
        return OkxSigner(
            credentials["api_key"],
            credentials["api_secret"],
            credentials["passphrase"],
            simulated=bool(self.config.get("simulated")),
        )

    async def _get(self, path: str, params: dict[str, str], signed: bool = True) -> list[Any]:
        """GET a v5 endpoint; its ``data`` list. The signature covers the query string."""
        query = urlencode(params)
        request_path = f"{path}?{query}" if query else path
        if signed:
            headers = self._signer.headers("GET", request_path, "", datetime.now(UTC))
        else:
            headers = {"x-simulated-trading": "1"} if self.config.get("simulated") else {}
        response = await self.rest("GET", request_path, headers=headers)
        try:
            body = load_json(response.content)
        except FrameError:
            body = None
        if not isinstance(body, dict) or response.status_code != 200 or body.get("code") != "0":
            detail = body if isinstance(body, dict) else {}
            raise VenueError(
                f"okx GET {path}: HTTP {response.status_code}, "
                f"code {detail.get('code')}: {str(detail.get('msg'))[:200]}"
            )
        data = body.get("data")
        if not isinstance(data, list):
            raise VenueError(f"okx GET {path}: no data list")
        return data


async def _expect(ws: WebSocketLike, event: str) -> None:
    """Read until the ack of ``event``; VenueError if OKX refuses (the caller bounds time)."""
    while True:
        raw = await ws.recv()
        if raw in ("pong", b"pong"):
            continue
        message = load_json(raw)
        if not isinstance(message, dict):
            continue
        got = message.get("event")
        if got == "error" or (got == event and message.get("code", "0") != "0"):
            raise VenueError(f"okx {event} refused: {message.get('code')} {message.get('msg')}")
        if got == event:
            return


def _closing(row: Mapping[str, Any]) -> bool | None:
    """Whether a long/short-mode fill closes (sell long, buy short); None in net mode."""
    pos_side = row.get("posSide")
    if pos_side == "long":
        return row.get("side") == "sell"
    if pos_side == "short":
        return row.get("side") == "buy"
    return None


def _row_key(row: Mapping[str, Any]) -> tuple[str, str]:
    return symbol(row.get("instId"), "instId"), text(row.get("tradeId"), "tradeId", 64)


def _order(fill: Fill) -> tuple[datetime, int, str]:
    trade_id = fill.fill_id.rpartition(":")[2]
    return fill.event_at, int(trade_id) if trade_id.lstrip("-").isdigit() else 0, fill.fill_id


def _dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))
