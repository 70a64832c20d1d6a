"""OKX v5 execution client: one follower's account, linear perpetual swaps, net mode.

- Orders: POST /api/v5/trade/order with ``tdMode`` cross or isolated (the account's
  setting), ``clOrdId`` derived from the order id (app.venues.okx.ids: a bijection, so no two
  orders share one), ``sz`` in contracts (``qty / ctVal`` on ``lotSz``, from the public
  instruments list), ``reduceOnly`` as asked; an ``ioc`` order at ``px`` on the tick (a buy
  rounds down, a sell up) for a limit order, else ``market``. The instruments list is read
  once per REST host and shared by every account's client (app.venues.okx.contract_list). A
  refused duplicate clOrdId (51016) is the order already placed: it is looked up and returned.
- Finding an order: GET /api/v5/trade/order by ``instId`` and ``clOrdId``; 51603 means OKX
  has never seen it. OKX keeps a cancelled order with no fill for 2 hours only.
- Account: GET /api/v5/account/balance ``totalEq``: the account's equity in USD, each
  currency's cash balance plus its unrealized PnL, i.e. the margin balance. ``adjEq`` is not
  it: it discounts non-stablecoin collateral by haircuts (a risk figure for the margin ratio)
  and Futures mode (single-currency margin) does not report it. The leader feed reads
  ``totalEq`` too. Positions: /api/v5/account/positions (SWAP), contracts x ``ctVal``.
- Position mode: GET /api/v5/account/config ``posMode``; ``long_short_mode`` raises
  AccountError before any order is sent (and so does OKX's own refusal, 51000 posSide).
- Stream: /ws/v5/private, ``login`` then channels ``orders``, ``positions`` (SWAP) and
  ``account``; a text ``ping`` every 20 s (OKX closes a connection silent for 30 s).
- Rate limits (docs, per user): placing and order details 60 per 2 s per instrument,
  balance and positions 10 per 2 s, config 5 per 2 s, instruments 20 per 2 s per IP; kept
  client-side by aiolimiter. 50011 raises RateLimited for one 2-second window (OKX sends no
  reset time).

Past 400 lines on purpose: this is one execution client, the shape every venue's has
(``build``, ``place``, ``query``, ``account``, ``events``); the signing, ids, errors, contracts,
instrument list, stream parsing and websocket orders already live beside it. What stays is the
client's own state (limiters per call, position mode, sessions) and the calls that use it.
"""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, Literal, TypeVar
from urllib.parse import urlencode

import aiohttp
import msgspec
import structlog
from aiolimiter import AsyncLimiter

from app.security.crypto import Credential
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
from app.venues.okx import schemas
from app.venues.okx.contract_list import shared
from app.venues.okx.contracts import Contract
from app.venues.okx.errors import (
    ACCOUNT_MODE,
    DUPLICATE_CL_ORD_ID,
    KEY_REFUSED,
    ORDER_NOT_FOUND,
    OUTCOME_UNKNOWN,
    RATE_LIMITED,
    RATE_WINDOW_S,
    is_long_short_refusal,
    reject_reason,
)
from app.venues.okx.ids import cl_ord_id
from app.venues.okx.signing import OkxSigner
from app.venues.okx.stream import decimal, parse_stream, signed_position, venue_order
from app.venues.okx.ws_orders import WsOrders, order_socket_url
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

REST_URL: Final = "https://www.okx.com"
WS_URL: Final = "wss://ws.okx.com:8443/ws/v5/private"
INST_TYPE: Final = "SWAP"
CL_ORD_ID: Final = re.compile(r"[A-Za-z0-9]{1,32}\Z")
LONG_SHORT: Final = "long_short_mode"
PING_INTERVAL_S: Final = 20.0
ACK_TIMEOUT_S: Final = 10.0
# An instrument not in the list is looked up again at most this often (a new listing).
RELOAD_MIN_AGE_S: Final = 10.0
INSTRUMENTS_TTL_S: Final = 300.0
CHANNELS: Final = (
    {"channel": "orders", "instType": INST_TYPE},
    {"channel": "positions", "instType": INST_TYPE},
    {"channel": "account"},
)


def _window(count: int) -> AsyncLimiter:
    return AsyncLimiter(count, RATE_WINDOW_S)


def build(context: ClientContext) -> OkxExecution:
    """The client of a stored ``okx`` account (kind -> factory registry)."""
    config = context.config
    td_mode = config.get("td_mode", "cross")
    if td_mode not in ("cross", "isolated"):
        raise ValueError(f"td_mode: {td_mode!r} is neither cross nor isolated")
    return OkxExecution(
        api_key=context.credentials["api_key"],
        api_secret=context.credentials["api_secret"],
        passphrase=context.credentials["passphrase"],
        td_mode="isolated" if td_mode == "isolated" else "cross",
        rest_url=str(config.get("rest_url") or REST_URL),
        ws_url=str(config.get("ws_url") or WS_URL),
        simulated=bool(config.get("simulated", False)),
        timeout_s=context.timeout_s,
        ws_orders_url=order_socket_url(config),
    )


class OkxExecution:
    venue = "okx"

    def __init__(
        self,
        *,
        api_key: Credential,
        api_secret: Credential,
        passphrase: Credential,
        td_mode: Literal["cross", "isolated"] = "cross",
        rest_url: str = REST_URL,
        ws_url: str = WS_URL,
        simulated: bool = False,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        session: aiohttp.ClientSession | None = None,
        ws_orders_url: str | None = None,
    ) -> None:
        self._signer = OkxSigner(api_key, api_secret, passphrase, simulated)
        self._td_mode = td_mode
        self._rest = rest_url.rstrip("/")
        self._ws_url = ws_url
        self._session = SessionSlot(session, timeout_s)
        self.ws_orders = (
            WsOrders(ws_orders_url, self._session.get, self._signer, timeout_s)
            if ws_orders_url
            else None
        )
        self._order_limits: defaultdict[str, AsyncLimiter] = defaultdict(lambda: _window(60))
        self._query_limits: defaultdict[str, AsyncLimiter] = defaultdict(lambda: _window(60))
        self._limits = {
            "/api/v5/account/balance": _window(10),
            "/api/v5/account/positions": _window(10),
            "/api/v5/account/config": _window(5),
            "/api/v5/public/instruments": _window(20),
        }
        self._pos_mode: str | None = None

    def client_order_id(self, order_id: str) -> str:
        return cl_ord_id(order_id)

    # -- orders ---------------------------------------------------------------------------

    async def place(self, request: OrderRequest) -> VenueOrder:
        client_id = request.client_id
        if not CL_ORD_ID.match(client_id):
            raise ValueError(f"{client_id!r} is not an OKX clOrdId: use client_order_id()")
        await self._require_net_mode()
        contract = await self._contract(request.symbol)
        if contract is None or contract.inverse:
            what = "an inverse swap, not traded" if contract else "not a listed SWAP"
            return _rejected(
                client_id, RejectReason.UNKNOWN_SYMBOL, None, f"{request.symbol}: {what}"
            )
        size = contract.contracts(request.qty)
        if contract.base(size) != request.qty:
            # Sizing rounds to whole lots of the follower's symbol: a remainder is a bug there.
            log.warning(
                "okx_qty_not_whole_lots", inst_id=request.symbol, qty=str(request.qty), sz=str(size)
            )
        if size <= 0:
            message = f"qty {request.qty} is less than one lot ({contract.lot * contract.ct_val})"
            return _rejected(client_id, RejectReason.BAD_PRECISION, None, message)
        body: dict[str, Any] = {
            "instId": request.symbol,
            "tdMode": self._td_mode,
            "side": request.side,
            "ordType": "market",
            "sz": plain(size),
            "clOrdId": client_id,
            "reduceOnly": request.reduce_only,
        }
        if request.limit_price is not None:
            price = to_step(request.limit_price, contract.tick, up=request.side == "sell")
            body |= {"ordType": "ioc", "px": plain(price)}
        path = "/api/v5/trade/order"
        async with self._order_limits[request.symbol]:
            reply = await self._place_call(path, body)
        envelope = _decode(schemas.ACKS, reply, path)
        ack = envelope.data[0] if envelope.data else None
        if envelope.code == "0" and ack is not None and ack.sCode == "0":
            return VenueOrder(client_id, OrderState.ACCEPTED, venue_order_id=ack.ordId or None)
        code, message = envelope.code, envelope.msg
        if ack is not None and ack.sCode not in ("", "0"):
            code, message = ack.sCode, ack.sMsg
        if code == DUPLICATE_CL_ORD_ID:
            existing = await self.query(request.symbol, client_id)
            if existing is None:
                raise OutcomeUnknown(f"okx: {client_id} refused as a duplicate but not found")
            return existing
        _raise_for(code, message, path)
        if is_long_short_refusal(code, message):
            self._pos_mode = None
            raise AccountError("okx: the account is in long/short mode; Copytrade trades net mode")
        if code == ACCOUNT_MODE:
            raise AccountError(f"okx: {message:.200} (swaps need Futures mode or above)")
        return _rejected(client_id, reject_reason(code), code, message)

    async def _place_call(self, path: str, body: Mapping[str, Any]) -> Reply:
        """Over the order socket while it is up (REST's envelope), else REST."""
        if self.ws_orders is not None:
            try:
                return await self.ws_orders.order(body)
            except SocketUnavailable:
                pass  # not sent: REST
        check_send_by()
        return await self._call("POST", path, body=body)

    async def query(self, symbol: str, client_id: str) -> VenueOrder | None:
        contract = await self._contract(symbol)
        if contract is None:
            return None  # OKX cannot have an order in an instrument it does not list
        path = "/api/v5/trade/order"
        async with self._query_limits[symbol]:
            reply = await self._call("GET", path, {"instId": symbol, "clOrdId": client_id})
        envelope = _decode(schemas.ORDERS, reply, path)
        if envelope.code == ORDER_NOT_FOUND:
            return None
        _raise_for(envelope.code, envelope.msg, path)
        rows = [row for row in envelope.data if row.clOrdId == client_id]
        if envelope.code != "0" or not rows:
            raise ExecutionError(f"okx {path}: code {envelope.code}: {envelope.msg:.200}")
        return venue_order(rows[0], contract)

    # -- account --------------------------------------------------------------------------

    async def account(self) -> AccountSnapshot:
        balances = await self._read(schemas.BALANCES, "/api/v5/account/balance", {})
        if not balances or not balances[0].totalEq:
            raise ExecutionError("okx balance: no totalEq")
        equity = decimal(balances[0].totalEq, "totalEq")
        rows = await self._read(
            schemas.POSITIONS, "/api/v5/account/positions", {"instType": INST_TYPE}
        )
        positions: dict[str, Decimal] = {}
        for row in rows:
            contract = await self._contract(row.instId)
            if contract is None or contract.inverse:
                log.warning("okx_position_skipped", inst_id=row.instId)
                continue
            positions[row.instId] = positions.get(row.instId, Decimal(0)) + signed_position(
                row, contract
            )
        mode = await self._position_mode(refresh=True)
        return AccountSnapshot(
            equity=equity,
            positions={inst: qty for inst, qty in positions.items() if qty != 0},
            one_way=mode != LONG_SHORT,
            at=datetime.now(UTC),
        )

    async def _position_mode(self, refresh: bool = False) -> str:
        if self._pos_mode is None or refresh:
            configs = await self._read(schemas.CONFIGS, "/api/v5/account/config", {})
            if not configs:
                raise ExecutionError("okx config: no account configuration")
            self._pos_mode = configs[0].posMode
        return self._pos_mode

    async def _require_net_mode(self) -> None:
        if await self._position_mode() == LONG_SHORT:
            raise AccountError(
                "okx: the account is in long/short mode (posMode long_short_mode); Copytrade "
                "trades net mode only: switch the account to net (buy/sell) mode"
            )

    async def _contract(self, inst_id: str) -> Contract | None:
        instruments = shared(self._rest)
        if inst_id not in instruments.contracts:
            await instruments.refresh(self._fetch_instruments, RELOAD_MIN_AGE_S)
        return instruments.contracts.get(inst_id)

    async def _fetch_instruments(self) -> list[schemas.Instrument]:
        path = "/api/v5/public/instruments"
        return await self._read(schemas.INSTRUMENTS, path, {"instType": INST_TYPE}, False)

    # -- the private stream ---------------------------------------------------------------

    async def events(self) -> AsyncIterator[AccountEvent]:
        instruments = shared(self._rest)
        # Fresh contract values on a connect: a listing since the last load becomes known.
        await instruments.refresh(self._fetch_instruments, INSTRUMENTS_TTL_S)
        async with self._session.get().ws_connect(self._ws_url, autoping=True) as ws:
            await ws.send_str(json.dumps(self._signer.ws_login(int(time.time()))))
            await _expect_login(ws)
            await ws.send_str(json.dumps({"id": "ct", "op": "subscribe", "args": CHANNELS}))
            async for text in text_frames(ws, "ping", PING_INTERVAL_S):
                for event in parse_stream(text, instruments.contracts, datetime.now(UTC)):
                    yield event

    async def close(self) -> None:
        if self.ws_orders is not None:
            await self.ws_orders.close()
        await self._session.close()

    # -- REST plumbing --------------------------------------------------------------------

    async def _read(
        self,
        decoder: msgspec.json.Decoder[schemas.Envelope[T]],
        path: str,
        params: Mapping[str, str],
        signed: bool = True,
    ) -> list[T]:
        """The data of a read that must succeed."""
        async with self._limits[path]:
            reply = await self._call("GET", path, params, signed=signed)
        envelope = _decode(decoder, reply, path)
        _raise_for(envelope.code, envelope.msg, path)
        if envelope.code != "0":
            raise ExecutionError(f"okx {path}: code {envelope.code}: {envelope.msg:.200}")
        return envelope.data

    async def _call(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        signed: bool = True,
    ) -> Reply:
        """A signed request: the signature covers the path with its query, and the body."""
        query = urlencode(params or {})
        request_path = f"{path}?{query}" if query else path
        payload = json.dumps(body, separators=(",", ":")) if body is not None else ""
        headers = {"Content-Type": "application/json"}
        if signed:
            headers |= self._signer.headers(method, request_path, payload, datetime.now(UTC))
        reply = await send(
            self._session.get(), method, self._rest + request_path, headers, payload or None
        )
        if reply.status >= 500:
            raise OutcomeUnknown(f"okx {path}: HTTP {reply.status}")
        return reply


def _rejected(client_id: str, reason: RejectReason, code: str | None, message: str) -> VenueOrder:
    return VenueOrder(
        client_id,
        OrderState.REJECTED,
        reason=reason,
        raw_code=code,
        raw_message=message[:500] or None,
    )


def _decode(
    decoder: msgspec.json.Decoder[schemas.Envelope[T]], reply: Reply, path: str
) -> schemas.Envelope[T]:
    try:
        return decoder.decode(reply.body)
    except msgspec.DecodeError as exc:
        if reply.status == 429:
            raise RateLimited(RATE_WINDOW_S, f"okx {path}: HTTP 429") from exc
        if reply.status == 401:
            raise AccountError(f"okx {path}: HTTP 401, the API key was refused") from exc
        raise OutcomeUnknown(f"okx {path}: unreadable answer (HTTP {reply.status})") from exc


def _raise_for(code: str, message: str, what: str) -> None:
    """Raise for the refusals that are not an answer about the order itself."""
    if code in RATE_LIMITED:
        raise RateLimited(RATE_WINDOW_S, f"okx {what}: code {code}: {message:.200}")
    if code in KEY_REFUSED:
        raise AccountError(f"okx {what}: code {code}: {message:.200}")
    if code in OUTCOME_UNKNOWN:
        raise OutcomeUnknown(f"okx {what}: code {code}: {message:.200}")


async def _expect_login(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Read until the login reply; AccountError if OKX refuses it."""
    while True:
        message = await ws.receive(timeout=ACK_TIMEOUT_S)
        if message.type is not aiohttp.WSMsgType.TEXT:
            raise ExecutionError("okx websocket closed before the login reply")
        if message.data == "pong":
            continue
        try:
            reply = schemas.STREAM.decode(message.data)
        except msgspec.DecodeError:
            continue
        if reply.event == "error" or (reply.event == "login" and reply.code != "0"):
            raise AccountError(f"okx websocket login refused: {reply.code} {reply.msg:.200}")
        if reply.event == "login":
            return
