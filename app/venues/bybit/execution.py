"""Bybit v5 execution client: one follower's unified account, linear contracts, one-way mode.

- Orders: ``order.create`` on the trade socket (``ws_orders.py``) while it is up, else
  POST /v5/order/create; ``category`` linear, ``positionIdx`` 0 (one-way), the order id
  itself as ``orderLinkId`` (Bybit takes up to 36 of ``[A-Za-z0-9_-]``; Copytrade's ids are 24
  of those), ``reduceOnly`` as asked; an IOC ``Limit`` at the limit price on the symbol's tick
  (a buy rounds down, a sell up: never past the limit), else a ``Market`` order. Quantities
  are base units, as Bybit counts linear contracts.
- Finding an order: GET /v5/order/realtime by ``orderLinkId`` (open orders, and the last 500
  closed ones until a Bybit restart), then /v5/order/history (7 days; an order cancelled or
  rejected with no fill only 24 hours). A refused duplicate ``orderLinkId`` (110072) is the
  order already placed: it is looked up and returned.
- Account: GET /v5/account/wallet-balance ``totalMarginBalance`` (wallet balance plus perpetual
  and futures unrealised PnL, USD-valued: the margin balance; ``totalEquity`` would add option
  value). An isolated-margin account has no account-wide figures: the settle coin's ``equity``
  then. Positions: /v5/position/list per settle coin, signed base units.
- Hedge mode: Bybit sets the position mode per symbol and has no endpoint that reads it. An
  order that does not fit the mode is refused with 10001 "position idx not match position
  mode": that raises AccountError. ``account()`` reports ``one_way`` False when a position row
  has ``positionIdx`` 1 or 2 (an empty hedge-mode account looks one-way until an order).
- Stream: /v5/private, ``auth`` then topics ``order.linear``, ``execution.linear``,
  ``position.linear`` and ``wallet``, an ``{"op":"ping"}`` every 20 s as Bybit recommends.
- Rate limits (docs v5/rate-limit): per UID, order create 10/s for linear, order and account
  reads 50/s; per IP, 600 requests per 5 s shared by every account on the host. All kept
  client-side by aiolimiter. 10006 raises RateLimited until
  ``X-Bapi-Limit-Reset-Timestamp``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, TypeVar

import aiohttp
import msgspec
import structlog
from aiolimiter import AsyncLimiter

from app.security.crypto import Credential
from app.venues.bybit import schemas
from app.venues.bybit.errors import (
    DUPLICATE_LINK_ID,
    KEY_REFUSED,
    OUTCOME_UNKNOWN,
    RATE_LIMITED,
    is_hedge_mode_refusal,
    reject_reason,
)
from app.venues.bybit.signing import BybitSigner, query_string
from app.venues.bybit.stream import Fills, add_position, decimal, parse_stream, venue_order
from app.venues.bybit.ws_orders import WsOrders, order_socket_url
from app.venues.execution import (
    AccountError,
    AccountEvent,
    AccountSnapshot,
    ExecutionError,
    OrderRequest,
    OrderState,
    OutcomeUnknown,
    RateLimited,
    RejectReason,
    VenueOrder,
    check_send_by,
)
from app.venues.limits import shared_limiter
from app.venues.transport import (
    DEFAULT_TIMEOUT_S,
    ClientContext,
    Reply,
    SessionSlot,
    plain,
    send,
    text_frames,
    to_step,
)
from app.venues.ws_orders import SocketUnavailable

log = structlog.get_logger(__name__)

T = TypeVar("T")

REST_URL: Final = "https://api.bybit.com"
WS_URL: Final = "wss://stream.bybit.com/v5/private"
CATEGORY: Final = "linear"
ORDER_LINK_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,36}\Z")
TOPICS: Final = ("order.linear", "execution.linear", "position.linear", "wallet")
PING_INTERVAL_S: Final = 20.0
ACK_TIMEOUT_S: Final = 10.0
# Every account's requests to one host count against the IP's 600 per 5 s.
IP_LIMIT: Final = (600, 5.0)
# A 403 is Bybit's IP ban for exceeding 600 requests in 5 s: "wait for at least 10 minutes".
IP_BAN_S: Final = 600.0
POSITIONS_PAGE: Final = 200
# Linear contracts settle in USDT or USDC; positions are listed per settle coin.
SETTLE_COINS: Final = ("USDT", "USDC")
MAX_PAGES: Final = 50


def build(context: ClientContext) -> BybitExecution:
    """The client of a stored ``bybit`` account (kind -> factory registry)."""
    config = context.config
    return BybitExecution(
        api_key=context.credentials["api_key"],
        api_secret=context.credentials["api_secret"],
        rest_url=str(config.get("rest_url") or REST_URL),
        ws_url=str(config.get("ws_url") or WS_URL),
        settle_coins=config.get("settle_coins") or SETTLE_COINS,
        timeout_s=context.timeout_s,
        ws_orders_url=order_socket_url(config),
    )


class BybitExecution:
    venue = "bybit"

    def __init__(
        self,
        *,
        api_key: Credential,
        api_secret: Credential,
        rest_url: str = REST_URL,
        ws_url: str = WS_URL,
        settle_coins: Iterable[str] = SETTLE_COINS,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        session: aiohttp.ClientSession | None = None,
        ws_orders_url: str | None = None,
    ) -> None:
        self._signer = BybitSigner(api_key, api_secret)
        self._rest = rest_url.rstrip("/")
        self._ws_url = ws_url
        self._settle_coins = tuple(settle_coins)
        self._session = SessionSlot(session, timeout_s)
        self.ws_orders = (
            WsOrders(ws_orders_url, self._session.get, self._signer, timeout_s)
            if ws_orders_url
            else None
        )
        self._order_limiter = AsyncLimiter(10, 1)
        self._read_limiter = AsyncLimiter(50, 1)
        self._instruments: dict[str, schemas.Instrument] = {}

    def client_order_id(self, order_id: str) -> str:
        """The order id itself: it already fits ``orderLinkId``."""
        if not ORDER_LINK_ID.match(order_id):
            raise ValueError(f"order id {order_id!r} is not a valid Bybit orderLinkId")
        return order_id

    # -- orders ---------------------------------------------------------------------------

    async def place(self, request: OrderRequest) -> VenueOrder:
        client_id = self.client_order_id(request.client_id)
        body: dict[str, Any] = {
            "category": CATEGORY,
            "symbol": request.symbol,
            "side": "Buy" if request.side == "buy" else "Sell",
            "orderType": "Market",
            "qty": plain(request.qty),
            "positionIdx": 0,
            "orderLinkId": client_id,
            "reduceOnly": request.reduce_only,
            "timeInForce": "IOC",
        }
        if request.limit_price is not None:
            instrument = await self._instrument(request.symbol)
            if instrument is None:
                return VenueOrder(
                    client_id,
                    OrderState.REJECTED,
                    reason=RejectReason.UNKNOWN_SYMBOL,
                    raw_message=f"instruments-info lists no linear symbol {request.symbol}",
                )
            tick = decimal(instrument.priceFilter.tickSize, "tickSize")
            price = to_step(request.limit_price, tick, up=request.side == "sell")
            body |= {"orderType": "Limit", "price": plain(price)}
        async with self._order_limiter:
            reply = await self._create(body)
        envelope = self._decode(schemas.CREATED, reply, "order/create")
        code, message = envelope.retCode, envelope.retMsg
        if code == 0:
            order_no = envelope.result.orderId if envelope.result else ""
            return VenueOrder(client_id, OrderState.ACCEPTED, venue_order_id=order_no or None)
        if code == DUPLICATE_LINK_ID:
            existing = await self.query(request.symbol, client_id)
            if existing is None:
                raise OutcomeUnknown(f"bybit: {client_id} refused as a duplicate but not found")
            return existing
        self._raise_for(code, message, reply, "order/create")
        if is_hedge_mode_refusal(code, message):
            raise AccountError(
                f"bybit: {request.symbol} is in hedge mode (both sides); Copytrade trades "
                "one-way mode only: switch the symbol to one-way mode"
            )
        return VenueOrder(
            client_id,
            OrderState.REJECTED,
            reason=reject_reason(code, message),
            raw_code=str(code),
            raw_message=message[:500],
        )

    async def _create(self, body: Mapping[str, Any]) -> Reply:
        """Over the trade socket while it is up (REST's envelope), else REST."""
        if self.ws_orders is not None:
            try:
                return await self.ws_orders.create(body)
            except SocketUnavailable:
                pass  # not sent: REST
        check_send_by()
        return await self._call("POST", "/v5/order/create", body=body)

    async def query(self, symbol: str, client_id: str) -> VenueOrder | None:
        params = {"category": CATEGORY, "symbol": symbol, "orderLinkId": client_id}
        for path in ("/v5/order/realtime", "/v5/order/history"):
            async with self._read_limiter:
                reply = await self._call("GET", path, params)
            listed = self._result(schemas.ORDERS, reply, path)
            for row in listed.rows:
                if row.orderLinkId == client_id:
                    return venue_order(row)
        return None

    # -- account --------------------------------------------------------------------------

    async def account(self) -> AccountSnapshot:
        path = "/v5/account/wallet-balance"
        async with self._read_limiter:
            reply = await self._call("GET", path, {"accountType": "UNIFIED"})
        wallets = self._result(schemas.WALLETS, reply, path)
        if not wallets.rows:
            raise ExecutionError("bybit wallet-balance: no unified account")
        equity = self._equity(wallets.rows[0])
        positions: dict[str, Decimal] = {}
        one_way = True
        for coin in self._settle_coins:
            for row in await self._position_rows(coin):
                one_way = one_way and row.positionIdx == 0
                add_position(positions, row)
        return AccountSnapshot(
            equity=equity,
            positions={name: qty for name, qty in positions.items() if qty != 0},
            one_way=one_way,
            at=datetime.now(UTC),
        )

    def _equity(self, wallet: schemas.Wallet) -> Decimal:
        if wallet.totalMarginBalance:
            return decimal(wallet.totalMarginBalance, "totalMarginBalance")
        coins = [c for c in wallet.coin if c.coin in self._settle_coins and c.equity]
        if not coins:
            raise ExecutionError("bybit wallet-balance: no margin balance and no settle coin")
        return sum((decimal(c.equity, "equity") for c in coins), Decimal(0))

    async def _position_rows(self, coin: str) -> list[schemas.Position]:
        path = "/v5/position/list"
        params = {"category": CATEGORY, "settleCoin": coin, "limit": str(POSITIONS_PAGE)}
        rows: list[schemas.Position] = []
        for _ in range(MAX_PAGES):
            async with self._read_limiter:
                reply = await self._call("GET", path, params)
            page = self._result(schemas.POSITIONS, reply, path)
            rows.extend(page.rows)
            if not page.rows or not page.nextPageCursor:
                return rows
            params = {**params, "cursor": page.nextPageCursor}
        raise ExecutionError(f"bybit {path}: more than {MAX_PAGES} pages")

    async def _instrument(self, symbol: str) -> schemas.Instrument | None:
        if symbol not in self._instruments:
            path = "/v5/market/instruments-info"
            async with self._read_limiter:
                reply = await self._call(
                    "GET", path, {"category": CATEGORY, "symbol": symbol}, signed=False
                )
            envelope = self._decode(schemas.INSTRUMENTS, reply, path)
            if envelope.retCode == 10001:
                return None  # "params error: symbol invalid": not a linear symbol
            listed = self._result(schemas.INSTRUMENTS, reply, path)
            for row in listed.rows:
                self._instruments[row.symbol] = row
        return self._instruments.get(symbol)

    # -- the private stream ---------------------------------------------------------------

    async def events(self) -> AsyncIterator[AccountEvent]:
        async with self._session.get().ws_connect(self._ws_url, autoping=True) as ws:
            expires = int(time.time() * 1000) + 10_000
            await ws.send_str(json.dumps(self._signer.ws_auth(expires)))
            await _expect(ws, "auth")
            await ws.send_str(json.dumps({"op": "subscribe", "args": list(TOPICS)}))
            await _expect(ws, "subscribe")
            fills = Fills()
            async for text in text_frames(ws, '{"op":"ping"}', PING_INTERVAL_S):
                for event in parse_stream(text, fills):
                    yield event

    async def close(self) -> None:
        if self.ws_orders is not None:
            await self.ws_orders.close()
        await self._session.close()

    # -- REST plumbing --------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        signed: bool = True,
    ) -> Reply:
        """A signed request; the signature covers the exact query string or JSON body sent."""
        if method == "GET":
            # Values are symbols, ids and Bybit's own (already percent-encoded) cursors.
            payload = query_string(params or {})
            url, data = f"{self._rest}{path}?{payload}", None
        else:
            payload = json.dumps(body, separators=(",", ":"))
            url, data = f"{self._rest}{path}", payload
        headers = {"Content-Type": "application/json"}
        async with shared_limiter(f"bybit:{self._rest}:ip", *IP_LIMIT):
            if signed:  # signed after the wait: the timestamp must be within recv_window
                headers |= self._signer.headers(payload, int(time.time() * 1000))
            reply = await send(self._session.get(), method, url, headers, data)
        if reply.status == 429:
            raise RateLimited(_retry_after(reply.headers), f"bybit {path}: HTTP 429")
        if reply.status == 403:
            raise RateLimited(IP_BAN_S, f"bybit {path}: HTTP 403 (IP rate limit)")
        if reply.status == 401:
            raise AccountError(f"bybit {path}: HTTP 401, the API key was refused")
        if reply.status >= 500:
            raise OutcomeUnknown(f"bybit {path}: HTTP {reply.status}")
        return reply

    @staticmethod
    def _decode(
        decoder: msgspec.json.Decoder[schemas.Envelope[T]], reply: Reply, what: str
    ) -> schemas.Envelope[T]:
        try:
            return decoder.decode(reply.body)
        except msgspec.DecodeError as exc:
            raise OutcomeUnknown(f"bybit {what}: unreadable answer (HTTP {reply.status})") from exc

    def _result(
        self, decoder: msgspec.json.Decoder[schemas.Envelope[T]], reply: Reply, path: str
    ) -> T:
        """The result of a read that must succeed."""
        envelope = self._decode(decoder, reply, path)
        if envelope.retCode != 0 or envelope.result is None:
            self._raise_for(envelope.retCode, envelope.retMsg, reply, path)
            raise ExecutionError(
                f"bybit {path}: retCode {envelope.retCode}: {envelope.retMsg:.200}"
            )
        return envelope.result

    @staticmethod
    def _raise_for(code: int, message: str, reply: Reply, what: str) -> None:
        """Raise for the refusals that are not an answer about the order itself."""
        if code in RATE_LIMITED:
            raise RateLimited(_retry_after(reply.headers), f"bybit {what}: retCode {code}")
        if code in KEY_REFUSED:
            raise AccountError(f"bybit {what}: retCode {code}: {message:.200}")
        if code in OUTCOME_UNKNOWN:
            raise OutcomeUnknown(f"bybit {what}: retCode {code}: {message:.200}")


def _retry_after(headers: Mapping[str, str]) -> float:
    """Seconds until ``X-Bapi-Limit-Reset-Timestamp`` (epoch ms); 1 s, the window, if absent."""
    reset = headers.get("X-Bapi-Limit-Reset-Timestamp", "")
    if not reset.isdigit():
        return 1.0
    return max(0.0, (int(reset) - time.time() * 1000) / 1000)


async def _expect(ws: aiohttp.ClientWebSocketResponse, op: str) -> None:
    """Read until the reply to ``op``; AccountError if Bybit refuses it."""
    while True:
        message = await ws.receive(timeout=ACK_TIMEOUT_S)
        if message.type is not aiohttp.WSMsgType.TEXT:
            raise ExecutionError(f"bybit websocket closed before the {op} reply")
        try:
            reply = schemas.STREAM.decode(message.data)
        except msgspec.DecodeError:
            continue
        if reply.op == op:
            if reply.success:
                return
            raise AccountError(f"bybit websocket {op} refused: {reply.ret_msg:.200}")
