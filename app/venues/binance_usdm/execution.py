"""Binance USD-M Futures follower account: signed REST with aiohttp, the user data stream.

- ``order.place`` on the websocket order API (``ws_orders.py``) while its socket is up, else
  ``POST /fapi/v1/order``: ``newClientOrderId`` = the order id, ``reduceOnly``, a market order
  or an IOC limit, ``newOrderRespType=RESULT`` (the answer carries the fill).
- ``GET /fapi/v1/order`` by ``origClientOrderId``: how an unknown outcome is resolved.
  Binance refuses a duplicate ``newClientOrderId`` only among open orders (-4116): a filled
  order must be found by this query, which the executor makes before any resend.
- ``GET /fapi/v3/account`` (``totalMarginBalance``: wallet balance plus unrealized PnL) and
  ``GET /fapi/v1/positionSide/dual`` (hedge mode is refused).
- HTTP 429/418 carry ``Retry-After``; HTTP 5xx, a timeout or a dropped connection after
  sending leave the execution status unknown, as Binance's docs say.

Signing is ``signing.BinanceSigner``, the leader feed's signer too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar
from urllib.parse import urlencode, urlsplit

import aiohttp
import msgspec
from aiolimiter import AsyncLimiter
from websockets.asyncio.client import connect

from app.domain.decimals import fmt
from app.security.crypto import Credential
from app.venues.binance_usdm import schemas
from app.venues.binance_usdm.signing import BinanceSigner
from app.venues.binance_usdm.stream import EVENT_DECODER, parse_event, venue_order
from app.venues.binance_usdm.ws_orders import WsOrders, order_socket_url
from app.venues.execution import (
    AccountError,
    AccountEvent,
    AccountSnapshot,
    ExecutionError,
    OrderRequest,
    OrderState,
    OutcomeUnknown,
    RateLimited,
    VenueOrder,
    check_send_by,
)
from app.venues.limits import shared_limiter
from app.venues.registry import AccountContext
from app.venues.ws_orders import SocketUnavailable

T = TypeVar("T")
# USD-M limits: 300 orders per 10 s and 1,200 per minute per account; 2,400 request weight
# per minute per IP. The executor stays under them rather than learn them from 429s.
ORDERS_PER_10S = 300
WEIGHT_PER_MINUTE = 2400
WEIGHTS = {"/fapi/v1/order": 1, "/fapi/v3/account": 5, "/fapi/v1/positionSide/dual": 30}
KEEPALIVE_S = 30 * 60  # a listenKey lapses after 60 minutes without a PUT
_error_decoder = msgspec.json.Decoder(schemas.ApiError)


class _Answer:
    __slots__ = ("body", "status")

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body


def build(context: AccountContext) -> BinanceUsdmClient:
    return BinanceUsdmClient(
        str(context.config["rest_url"]),
        str(context.config["ws_url"]),
        context.credentials["api_key"],
        context.credentials["api_secret"],
        context.timeout_s,
        order_socket_url(context.config),
    )


class BinanceUsdmClient:
    venue = "binance-usdm"

    def __init__(
        self,
        rest_url: str,
        ws_url: str,
        api_key: Credential,
        api_secret: Credential,
        timeout_s: float,
        ws_orders_url: str | None = None,
    ) -> None:
        self._rest_url = rest_url.rstrip("/")
        self._ws_url = ws_url.rstrip("/")
        self._signer = BinanceSigner(api_key, api_secret)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._orders = AsyncLimiter(ORDERS_PER_10S, 10)
        self._host = urlsplit(self._rest_url).netloc
        self.ws_orders = (
            WsOrders(ws_orders_url, self._http, self._signer, timeout_s) if ws_orders_url else None
        )

    def client_order_id(self, order_id: str) -> str:
        # Order ids are 24 characters of [A-Za-z0-9_-]: within newClientOrderId's
        # ^[\.A-Z\:/a-z0-9_-]{1,36}$ as they are.
        return order_id

    # -- orders -----------------------------------------------------------------------------

    async def place(self, request: OrderRequest) -> VenueOrder:
        params: dict[str, str] = {
            "symbol": request.symbol,
            "side": request.side.upper(),
            "quantity": fmt(request.qty),
            "newClientOrderId": request.client_id,
            "newOrderRespType": "RESULT",
        }
        if request.limit_price is None:
            params["type"] = "MARKET"
        else:
            params.update(type="LIMIT", timeInForce="IOC", price=fmt(request.limit_price))
        if request.reduce_only:
            params["reduceOnly"] = "true"
        await self._orders.acquire()
        answer = await self._place(params)
        if answer.status == 200:
            return venue_order(msgspec.json.decode(answer.body, type=schemas.Order))
        error = _error(answer)
        if error.code == schemas.DUPLICATE_CLIENT_ID:
            # Already placed (and open): what it is now is what counts.
            found = await self.query(request.symbol, request.client_id)
            if found is None:
                raise OutcomeUnknown("duplicate client id, yet the order is not found")
            return found
        if error.code in schemas.UNKNOWN_CODES:
            raise OutcomeUnknown(f"Binance {error.code}: {error.msg}"[:300])
        self._refuse_key(error)
        return VenueOrder(
            client_id=request.client_id,
            state=OrderState.REJECTED,
            reason=schemas.reason_for(error.code),
            raw_code=str(error.code),
            raw_message=error.msg[:200],
        )

    async def _place(self, params: dict[str, str]) -> _Answer:
        """Over the order socket while it is up (the same answer as REST's), else REST."""
        if self.ws_orders is not None:
            try:
                return _Answer(*await self.ws_orders.place(params))
            except SocketUnavailable:
                pass  # not sent: REST
        check_send_by()
        return await self._send("POST", "/fapi/v1/order", params, placing=True)

    async def query(self, symbol: str, client_id: str) -> VenueOrder | None:
        answer = await self._send(
            "GET", "/fapi/v1/order", {"symbol": symbol, "origClientOrderId": client_id}
        )
        if answer.status == 200:
            return venue_order(msgspec.json.decode(answer.body, type=schemas.Order))
        error = _error(answer)
        if error.code == schemas.NO_SUCH_ORDER:
            return None
        self._refuse_key(error)
        raise ExecutionError(f"GET /fapi/v1/order: HTTP {answer.status} {error.code} {error.msg}")

    # -- the account ------------------------------------------------------------------------

    async def account(self) -> AccountSnapshot:
        mode = await self._get("/fapi/v1/positionSide/dual", schemas.DualSide)
        body = await self._get("/fapi/v3/account", schemas.Account)
        positions: dict[str, Decimal] = {}
        for position in body.positions:
            if position.positionAmt:
                positions[position.symbol] = (
                    positions.get(position.symbol, Decimal(0)) + position.positionAmt
                )
        return AccountSnapshot(
            equity=body.totalMarginBalance,
            positions=positions,
            one_way=not mode.dualSidePosition,
            at=datetime.now(UTC),
        )

    async def events(self) -> AsyncIterator[AccountEvent]:
        answer = await self._send("POST", "/fapi/v1/listenKey", {}, signed=False)
        if answer.status != 200:
            error = _error(answer)
            self._refuse_key(error)
            raise ExecutionError(f"POST /fapi/v1/listenKey: {error.code} {error.msg}")
        key = msgspec.json.decode(answer.body, type=schemas.ListenKey).listenKey
        keepalive = asyncio.create_task(self._keepalive())
        try:
            async with connect(f"{self._ws_url}/ws/{key}", ping_interval=20) as ws:
                async for raw in ws:
                    try:
                        event = EVENT_DECODER.decode(raw)
                    except msgspec.DecodeError:
                        continue  # another event type's shape: not ours to read
                    if event.e == "listenKeyExpired":
                        return
                    parsed = parse_event(event)
                    if parsed is not None:
                        yield parsed
        finally:
            keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keepalive

    async def close(self) -> None:
        if self.ws_orders is not None:
            await self.ws_orders.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- signed REST ------------------------------------------------------------------------

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE_S)
            await self._send("PUT", "/fapi/v1/listenKey", {}, signed=False)

    async def _get(self, path: str, schema: type[T]) -> T:
        answer = await self._send("GET", path, {})
        if answer.status != 200:
            error = _error(answer)
            self._refuse_key(error)
            raise ExecutionError(f"GET {path}: HTTP {answer.status} {error.code} {error.msg}")
        return msgspec.json.decode(answer.body, type=schema)

    async def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        *,
        signed: bool = True,
        placing: bool = False,
    ) -> _Answer:
        """One REST call; raises RateLimited on 429/418 and, for an order, OutcomeUnknown
        when the request may have reached the venue without an answer."""
        weight = WEIGHTS.get(path, 1)
        if weight and not placing:
            limiter = shared_limiter(f"binance-usdm:{self._host}:weight", WEIGHT_PER_MINUTE, 60)
            await limiter.acquire(weight)
        if signed:
            query = self._signer.query(params, int(time.time() * 1000))
        else:
            query = urlencode(dict(params))
        url = f"{self._rest_url}{path}?{query}" if query else f"{self._rest_url}{path}"
        headers = self._signer.headers()
        try:
            async with self._http().request(method, url, headers=headers) as response:
                body = await response.read()
                status = response.status
                retry_after = response.headers.get("Retry-After")
        except (TimeoutError, aiohttp.ClientError) as exc:
            if placing:
                raise OutcomeUnknown(f"{method} {path}: {type(exc).__name__}") from exc
            raise ExecutionError(f"{method} {path}: {type(exc).__name__}") from exc
        if status in (429, 418):
            raise RateLimited(_seconds(retry_after), f"{method} {path}: HTTP {status}")
        if status >= 500:
            if placing:
                raise OutcomeUnknown(f"{method} {path}: HTTP {status}")
            raise ExecutionError(f"{method} {path}: HTTP {status}")
        return _Answer(status, body)

    @staticmethod
    def _refuse_key(error: schemas.ApiError) -> None:
        if error.code in schemas.KEY_REFUSED:
            raise AccountError(
                f"Binance refused the API key ({error.code}: {error.msg}): check the key, its "
                "IP whitelist and that it may trade futures"
            )


def _seconds(header: str | None) -> float:
    try:
        return max(0.0, float(header)) if header else 1.0
    except ValueError:
        return 1.0


def _error(answer: _Answer) -> schemas.ApiError:
    try:
        return _error_decoder.decode(answer.body)
    except msgspec.DecodeError:
        return schemas.ApiError(0, f"HTTP {answer.status}, not a Binance error payload")
