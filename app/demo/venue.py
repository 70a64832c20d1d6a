"""The demo's exchange: a Binance USD-M trading account on loopback, so that `make run` shows
a follower whose orders are placed on a venue, filled, and read back (status, equity,
positions), with no exchange account needed.

It speaks the subset of Binance's API the execution client uses, signatures checked: orders
(market, or IOC limit; over REST or the ``ws-fapi`` socket's ``order.place``) fill at once at
the demo leader's latest price; the user data stream pushes ORDER_TRADE_UPDATE and
ACCOUNT_UPDATE. No filters, no PnL: the tests' fake venue
(tests/venues/binance_usdm_trading.py) is the one that plays Binance's rules.
"""

from __future__ import annotations

import contextlib
import hmac
import itertools
import json
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from decimal import Decimal
from typing import Any

from aiohttp import WSMsgType, web

from app.venues.binance_usdm.signing import sign

WS_FAPI_PATH = "/ws-fapi/v1"

# aiohttp's server rather than uvicorn's: it installs no signal handlers in the service.


def _error(code: int, msg: str, status: int = 400) -> web.Response:
    return web.json_response({"code": code, "msg": msg}, status=status)


class DemoVenue:
    def __init__(self, prices: dict[str, Decimal], equity: Decimal) -> None:
        self.api_key = "demo-" + secrets.token_hex(8)
        self.api_secret = secrets.token_hex(16)
        self.prices = prices  # the demo leader moves them
        self.equity = equity
        self.positions: dict[str, Decimal] = {}
        self._orders: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._listen_key = secrets.token_urlsafe(32)
        self._sockets: set[web.WebSocketResponse] = set()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/fapi/v1/listenKey", self._listen_key_route)
        app.router.add_route("*", "/fapi/v1/order", self._order)
        app.router.add_get("/fapi/v3/account", self._account)
        app.router.add_get("/fapi/v1/positionSide/dual", self._dual)
        app.router.add_get("/ws/{listen_key}", self._ws)
        app.router.add_get(WS_FAPI_PATH, self._ws_fapi)
        return app

    def _refused(self, request: web.Request, signed: bool = True) -> web.Response | None:
        if request.headers.get("X-MBX-APIKEY") != self.api_key:
            return _error(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        query, _, signature = request.query_string.rpartition("&signature=")
        if signed and not hmac.compare_digest(signature, sign(query, self.api_secret)):
            return _error(-1022, "Signature for this request is not valid.")
        return None

    async def _listen_key_route(self, request: web.Request) -> web.Response:
        return self._refused(request, signed=False) or web.json_response(
            {"listenKey": self._listen_key}
        )

    async def _dual(self, request: web.Request) -> web.Response:
        return self._refused(request) or web.json_response({"dualSidePosition": False})

    async def _account(self, request: web.Request) -> web.Response:
        positions = [
            {"symbol": s, "positionSide": "BOTH", "positionAmt": str(q)}
            for s, q in self.positions.items()
            if q
        ]
        return self._refused(request) or web.json_response(
            {"totalMarginBalance": str(self.equity), "positions": positions}
        )

    async def _order(self, request: web.Request) -> web.Response:
        if refused := self._refused(request):
            return refused
        q = request.query
        if request.method == "GET":
            found = self._orders.get(q.get("origClientOrderId", ""))
            return web.json_response(found) if found else _error(-2013, "Order does not exist.")
        status, body = await self._place(q)
        return web.json_response(body, status=status)

    async def _place(self, q: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """(status, body) of an order, REST's and the socket's alike."""
        symbol, qty = q["symbol"], Decimal(q["quantity"])
        price = self.prices.get(symbol)
        if price is None:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        side = 1 if q["side"] == "BUY" else -1
        self.positions[symbol] = self.positions.get(symbol, Decimal(0)) + side * qty
        order = {
            "clientOrderId": q["newClientOrderId"],
            "orderId": next(self._ids),
            "symbol": symbol,
            "side": q["side"],
            "status": "FILLED",
            "executedQty": str(qty),
            "avgPrice": str(price),
        }
        self._orders[q["newClientOrderId"]] = order
        await self._push(order, symbol)
        return 200, order

    async def _ws_fapi(self, request: web.Request) -> web.WebSocketResponse:
        """``order.place`` over the websocket order API, params signed sorted by name."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            if message.type is not WSMsgType.TEXT:
                continue
            frame = json.loads(message.data)
            params = {k: str(v) for k, v in (frame.get("params") or {}).items()}
            signature = params.pop("signature", "")
            payload = "&".join(f"{k}={params[k]}" for k in sorted(params))
            if params.get("apiKey") != self.api_key:
                status, body = 401, {"code": -2015, "msg": "Invalid API-key."}
            elif not hmac.compare_digest(signature, sign(payload, self.api_secret)):
                status, body = 400, {"code": -1022, "msg": "Signature is not valid."}
            else:
                status, body = await self._place(params)
            key = "result" if status == 200 else "error"
            await ws.send_str(json.dumps({"id": frame.get("id"), "status": status, key: body}))
        return ws

    async def _push(self, order: dict[str, Any], symbol: str) -> None:
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
                "a": {"P": [{"s": symbol, "pa": str(self.positions[symbol]), "ps": "BOTH"}]},
            },
        ]
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                for event in events:
                    await ws.send_str(json.dumps(event))

    async def close(self) -> None:
        """Close the stream connections: the server waits for open ones when it stops."""
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close()

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        if request.match_info.get("listen_key") != self._listen_key:
            raise web.HTTPForbidden()
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.add(ws)
        try:
            async for message in ws:
                if message.type is WSMsgType.ERROR:
                    break
        finally:
            self._sockets.discard(ws)
        return ws


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
