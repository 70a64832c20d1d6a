"""The demo's exchange: Binance USD-M trading accounts on loopback, so that `make run` shows
a follower whose orders are placed on a venue, filled, and read back (status, equity,
positions), with no exchange account needed.

It speaks the subset of Binance's API the execution client uses, signatures checked: orders
(market, or IOC limit; over REST or the ``ws-fapi`` socket's ``order.place``) fill at once at
the demo leader's latest price; the user data stream pushes ORDER_TRADE_UPDATE and
ACCOUNT_UPDATE. One account per API key, as on Binance: its own equity, positions, orders,
listen key and user data streams, so an order's events reach only its own account's streams.
One ``ws-fapi`` connection may carry several accounts' requests (each names its ``apiKey``).
No filters, no PnL, no rate limits: the tests' fake venue
(tests/venues/binance_usdm_trading.py) is the one that plays Binance's rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import json
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import WSMsgType, web

from app.venues.binance_usdm.signing import sign

WS_FAPI_PATH = "/ws-fapi/v1"

# aiohttp's server rather than uvicorn's: it installs no signal handlers in the service.


def _error(code: int, msg: str, status: int = 400) -> web.Response:
    return web.json_response({"code": code, "msg": msg}, status=status)


@dataclass(eq=False)
class DemoAccount:
    """One API key's account."""

    api_key: str
    api_secret: str
    equity: Decimal
    positions: dict[str, Decimal] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    listen_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    # The account's user data stream connections.
    sockets: set[web.WebSocketResponse] = field(default_factory=set)


class DemoVenue:
    def __init__(self, prices: dict[str, Decimal], equity: Decimal) -> None:
        self.prices = prices  # the demo leader moves them
        self._equity = equity
        self._accounts: dict[str, DemoAccount] = {}
        self._by_listen_key: dict[str, DemoAccount] = {}
        self._ids = itertools.count(1)
        self._orders_sockets: set[web.WebSocketResponse] = set()
        self._pushes: set[asyncio.Task[None]] = set()
        self.account = self.add_account()

    # The first account's keys: the demo's one follower trades with them.
    @property
    def api_key(self) -> str:
        return self.account.api_key

    @property
    def api_secret(self) -> str:
        return self.account.api_secret

    def add_account(self, equity: Decimal | None = None) -> DemoAccount:
        """A new account with its own API key and secret."""
        account = DemoAccount(
            api_key="demo-" + secrets.token_hex(8),
            api_secret=secrets.token_hex(16),
            equity=self._equity if equity is None else equity,
        )
        self._accounts[account.api_key] = account
        self._by_listen_key[account.listen_key] = account
        return account

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/fapi/v1/listenKey", self._listen_key_route)
        app.router.add_route("*", "/fapi/v1/order", self._order)
        app.router.add_get("/fapi/v3/account", self._account)
        app.router.add_get("/fapi/v1/positionSide/dual", self._dual)
        app.router.add_get("/ws/{listen_key}", self._ws)
        app.router.add_get(WS_FAPI_PATH, self._ws_fapi)
        return app

    def _authenticated(self, request: web.Request, signed: bool = True) -> DemoAccount:
        """The account of the request's API key; raises the refusal Binance answers with."""
        account = self._accounts.get(request.headers.get("X-MBX-APIKEY", ""))
        if account is None:
            raise _refusal(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        query, _, signature = request.query_string.rpartition("&signature=")
        if signed and not hmac.compare_digest(signature, sign(query, account.api_secret)):
            raise _refusal(-1022, "Signature for this request is not valid.")
        return account

    async def _listen_key_route(self, request: web.Request) -> web.Response:
        account = self._authenticated(request, signed=False)
        return web.json_response({"listenKey": account.listen_key})

    async def _dual(self, request: web.Request) -> web.Response:
        self._authenticated(request)
        return web.json_response({"dualSidePosition": False})

    async def _account(self, request: web.Request) -> web.Response:
        account = self._authenticated(request)
        positions = [
            {"symbol": s, "positionSide": "BOTH", "positionAmt": str(q)}
            for s, q in account.positions.items()
            if q
        ]
        return web.json_response(
            {"totalMarginBalance": str(account.equity), "positions": positions}
        )

    async def _order(self, request: web.Request) -> web.Response:
        account = self._authenticated(request)
        q = request.query
        if request.method == "GET":
            found = account.orders.get(q.get("origClientOrderId", ""))
            return web.json_response(found) if found else _error(-2013, "Order does not exist.")
        status, body = await self._place(account, q)
        return web.json_response(body, status=status)

    async def _place(
        self, account: DemoAccount, q: Mapping[str, str]
    ) -> tuple[int, dict[str, Any]]:
        """(status, body) of an order, REST's and the socket's alike."""
        symbol, qty = q["symbol"], Decimal(q["quantity"])
        price = self.prices.get(symbol)
        if price is None:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        side = 1 if q["side"] == "BUY" else -1
        account.positions[symbol] = account.positions.get(symbol, Decimal(0)) + side * qty
        order = {
            "clientOrderId": q["newClientOrderId"],
            "orderId": next(self._ids),
            "symbol": symbol,
            "side": q["side"],
            "status": "FILLED",
            "executedQty": str(qty),
            "avgPrice": str(price),
        }
        account.orders[q["newClientOrderId"]] = order
        # Answered first, pushed after: the order's answer waits for no stream.
        push = asyncio.create_task(self._push(account, order, symbol))
        self._pushes.add(push)
        push.add_done_callback(self._pushes.discard)
        return 200, order

    async def _ws_fapi(self, request: web.Request) -> web.WebSocketResponse:
        """``order.place`` over the websocket order API, params signed sorted by name; each
        request names its account (``apiKey``)."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._orders_sockets.add(ws)
        try:
            async for message in ws:
                if message.type is not WSMsgType.TEXT:
                    continue
                frame = json.loads(message.data)
                status, body = await self._ws_order(frame.get("params") or {})
                key = "result" if status == 200 else "error"
                await ws.send_str(json.dumps({"id": frame.get("id"), "status": status, key: body}))
        finally:
            self._orders_sockets.discard(ws)
        return ws

    async def _ws_order(self, raw: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        params = {k: str(v) for k, v in raw.items()}
        signature = params.pop("signature", "")
        account = self._accounts.get(params.get("apiKey", ""))
        if account is None:
            return 401, {"code": -2015, "msg": "Invalid API-key."}
        payload = "&".join(f"{k}={params[k]}" for k in sorted(params))
        if not hmac.compare_digest(signature, sign(payload, account.api_secret)):
            return 400, {"code": -1022, "msg": "Signature is not valid."}
        return await self._place(account, params)

    async def _push(self, account: DemoAccount, order: dict[str, Any], symbol: str) -> None:
        at = int(time.time() * 1000)
        events = [
            {
                "e": "ORDER_TRADE_UPDATE",
                "E": at,
                "o": {
                    "c": order["clientOrderId"],
                    "X": "FILLED",
                    "s": symbol,
                    "z": order["executedQty"],
                    "ap": order["avgPrice"],
                    "i": order["orderId"],
                },
            },
            {
                "e": "ACCOUNT_UPDATE",
                "E": at,
                "a": {"P": [{"s": symbol, "pa": str(account.positions[symbol]), "ps": "BOTH"}]},
            },
        ]
        for ws in list(account.sockets):
            with contextlib.suppress(Exception):
                for event in events:
                    await ws.send_str(json.dumps(event))

    async def close(self) -> None:
        """Close the connections: the server waits for open ones when it stops."""
        for push in list(self._pushes):
            push.cancel()
        sockets = [ws for a in self._accounts.values() for ws in a.sockets]
        for ws in [*sockets, *self._orders_sockets]:
            with contextlib.suppress(Exception):
                await ws.close()

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        account = self._by_listen_key.get(request.match_info.get("listen_key", ""))
        if account is None:
            raise web.HTTPForbidden()
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        account.sockets.add(ws)
        try:
            async for message in ws:
                if message.type is WSMsgType.ERROR:
                    break
        finally:
            account.sockets.discard(ws)
        return ws


def _refusal(code: int, msg: str, status: int = 400) -> web.HTTPException:
    """Binance's error body under ``status``, raised from a handler."""
    cls = web.HTTPUnauthorized if status == 401 else web.HTTPBadRequest
    return cls(text=json.dumps({"code": code, "msg": msg}), content_type="application/json")


@contextlib.asynccontextmanager
async def serve(venue: DemoVenue) -> AsyncIterator[int]:
    """Serve ``venue`` on a free loopback port; yield the port."""
    runner = web.AppRunner(venue.app(), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await venue.close()
        await runner.cleanup()
