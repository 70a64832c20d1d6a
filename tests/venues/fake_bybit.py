"""Bybit v5 on loopback: the private websocket (auth, subscribe, ping) and the REST routes the
adapter reads (wallet balance, position list, execution list), in Bybit's formats.

Every signature the client sends is checked the way Bybit documents it: the websocket auth
over ``"GET/realtime" + expires``, REST over ``timestamp + key + recv_window + queryString``
(the raw query string as received). The execution list enforces Bybit's limits: at most 7
days between startTime and endTime, at most 100 rows a page, newest first, an opaque
percent-encoded ``nextPageCursor``. The private streams of the APIs v5 replaced
(``/realtime_private``, ``/contract/private/v3``, ``/unified/private/v3``) are refused.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route
from starlette.websockets import WebSocket

from tests.venues.clock import in_recv_window
from tests.venues.harness import FakeVenue

SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000
_ids = itertools.count(1)


def _sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def execution(
    symbol: str,
    side: str,
    qty: str,
    price: str,
    *,
    exec_type: str = "Trade",
    category: str = "linear",
    exec_time_ms: int | None = None,
    exec_id: str | None = None,
    order_id: str | None = None,
    leaves_qty: str = "0",
    closed_size: str = "0",
    create_type: str = "CreateByUser",
    fee: str = "0.01",
    fee_currency: str = "USDT",
) -> dict[str, Any]:
    """One execution row, with the fields of Bybit's documented stream example."""
    return {
        "category": category,
        "symbol": symbol,
        "closedSize": closed_size,
        "execFee": fee,
        "execId": exec_id or str(uuid.uuid4()),
        "execPrice": price,
        "execQty": qty,
        "execType": exec_type,
        "execValue": "0",
        "feeRate": "0.00055",
        "tradeIv": "",
        "markIv": "",
        "blockTradeId": "",
        "markPrice": price,
        "indexPrice": "",
        "underlyingPrice": "",
        "leavesQty": leaves_qty,
        "orderId": order_id or str(uuid.uuid4()),
        "orderLinkId": "",
        "orderPrice": price,
        "orderQty": qty,
        "orderType": "Market",
        "stopOrderType": "UNKNOWN",
        "side": side,
        "execTime": str(exec_time_ms if exec_time_ms is not None else int(time.time() * 1000)),
        "isLeverage": "0",
        "isMaker": False,
        "seq": next(_ids),
        "marketUnit": "",
        "execPnl": "0",
        "createType": create_type,
        "extraFees": "",
        "feeCurrency": fee_currency,
    }


@dataclass
class FakeBybit(FakeVenue):
    api_key: str = "bybit-test-key"
    api_secret: str = "bybit-test-secret"
    ws_path: str = "/v5/private"
    total_equity: str = "100000"
    # Execution history (what /v5/execution/list serves), any order.
    history: list[dict[str, Any]] = field(default_factory=list)
    # Position rows per category, in /v5/position/list's format.
    positions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    subscribed_topics: list[str] = field(default_factory=list)
    auth_failures: int = 0
    rest_failures: list[str] = field(default_factory=list)
    pings: int = 0
    _authed: set[int] = field(default_factory=set)

    # -- websocket ------------------------------------------------------------------------

    async def on_message(self, ws: WebSocket, message: Any) -> None:
        if not isinstance(message, dict):
            return
        op = message.get("op")
        if op == "auth":
            await self._auth(ws, message.get("args"))
        elif op == "subscribe":
            if id(ws) not in self._authed:
                await self.send(
                    ws,
                    {
                        "success": False,
                        "ret_msg": "Request not authorized",
                        "op": "subscribe",
                        "conn_id": "fake",
                    },
                )
                return
            self.subscribed_topics = list(message.get("args") or [])
            await self.send(
                ws, {"success": True, "ret_msg": "", "op": "subscribe", "conn_id": "fake"}
            )
            self.mark_subscribed()
        elif op == "ping":
            self.pings += 1
            await self.send(
                ws,
                {
                    "req_id": message.get("req_id", ""),
                    "op": "pong",
                    "args": [str(int(time.time() * 1000))],
                    "conn_id": "fake",
                },
            )

    async def _auth(self, ws: WebSocket, args: Any) -> None:
        ok = (
            isinstance(args, list)
            and len(args) == 3
            and args[0] == self.api_key
            and isinstance(args[1], int)
            and args[1] > time.time() * 1000
            and args[2] == _sign(self.api_secret, f"GET/realtime{args[1]}")
        )
        if ok:
            self._authed.add(id(ws))
        else:
            self.auth_failures += 1
        await self.send(
            ws,
            {
                "success": ok,
                "ret_msg": "" if ok else "Params Error",
                "op": "auth",
                "conn_id": "fake",
            },
        )

    async def push_executions(self, *rows: dict[str, Any], topic: str | None = None) -> None:
        """One stream message carrying ``rows``."""
        category = rows[0]["category"]
        await self.push(
            {
                "topic": topic or f"execution.{category}",
                "id": f"{uuid.uuid4().hex}_{rows[0]['symbol']}",
                "creationTime": int(time.time() * 1000),
                "data": list(rows),
            }
        )

    async def trade(self, *rows: dict[str, Any]) -> None:
        """Executions that happen now: recorded in history and pushed live, in one message."""
        self.history.extend(rows)
        await self.push_executions(*rows)

    def retired_routes(self) -> list[BaseRoute]:
        # Private streams of the APIs v5 replaced (v2 USDT perpetual, contract and unified v3).
        paths = ("/realtime_private", "/contract/private/v3", "/unified/private/v3")
        return [self.retired_websocket(path) for path in paths]

    # -- REST -----------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v5/account/wallet-balance", self._wallet),
            Route("/v5/position/list", self._position_list),
            Route("/v5/execution/list", self._execution_list),
        ]

    async def _checked(self, request: Request) -> dict[str, str] | JSONResponse:
        """The decoded query of a correctly signed request, or Bybit's error answer."""
        call = await self.record(request)
        raw_query = request.scope["query_string"].decode()
        headers = call.headers
        timestamp = headers.get("x-bapi-timestamp", "")
        window = headers.get("x-bapi-recv-window", "5000")
        expected = _sign(self.api_secret, f"{timestamp}{self.api_key}{window}{raw_query}")
        if headers.get("x-bapi-api-key") != self.api_key:
            return self._error(10003, "API key is invalid.", call.path)
        if not in_recv_window(timestamp, window):
            return self._error(10002, "invalid request, please check your timestamp", call.path)
        if headers.get("x-bapi-sign") != expected:
            return self._error(10004, "error sign!", call.path)
        return call.query

    def _error(self, code: int, msg: str, path: str) -> JSONResponse:
        self.rest_failures.append(f"{path}: {code} {msg}")
        return JSONResponse(
            {
                "retCode": code,
                "retMsg": msg,
                "result": {},
                "retExtInfo": {},
                "time": int(time.time() * 1000),
            }
        )

    @staticmethod
    def _ok(result: dict[str, Any]) -> JSONResponse:
        return JSONResponse(
            {
                "retCode": 0,
                "retMsg": "OK",
                "result": result,
                "retExtInfo": {},
                "time": int(time.time() * 1000),
            }
        )

    async def _wallet(self, request: Request) -> JSONResponse:
        query = await self._checked(request)
        if isinstance(query, JSONResponse):
            return query
        if query.get("accountType") != "UNIFIED":
            return self._error(10001, "accountType only support UNIFIED", request.url.path)
        return self._ok(
            {
                "list": [
                    {
                        "accountType": "UNIFIED",
                        "totalEquity": self.total_equity,
                        "totalMarginBalance": self.total_equity,
                        "totalWalletBalance": self.total_equity,
                        "totalPerpUPL": "0",
                        "coin": [],
                    }
                ]
            }
        )

    async def _position_list(self, request: Request) -> JSONResponse:
        query = await self._checked(request)
        if isinstance(query, JSONResponse):
            return query
        category = query.get("category", "")
        rows = self.positions.get(category, [])
        if category == "linear":
            if "symbol" not in query and "settleCoin" not in query:
                return self._error(10001, "symbol or settleCoin is required", request.url.path)
            coin = query.get("settleCoin")
            rows = [r for r in rows if coin is None or r["symbol"].endswith(coin)]
        if "symbol" in query:
            rows = [r for r in rows if r["symbol"] == query["symbol"]]
        return self._page(rows, query, 200, {"category": category})

    async def _execution_list(self, request: Request) -> JSONResponse:
        query = await self._checked(request)
        if isinstance(query, JSONResponse):
            return query
        category = query.get("category")
        if category not in ("linear", "inverse", "spot", "option"):
            return self._error(10001, "category is required", request.url.path)
        now = int(time.time() * 1000)
        start = int(query["startTime"]) if "startTime" in query else None
        end = int(query["endTime"]) if "endTime" in query else None
        if start is not None and end is not None and end - start > SEVEN_DAYS_MS:
            return self._error(10001, "The time range must be within 7 days", request.url.path)
        if start is None and end is None:
            start, end = now - SEVEN_DAYS_MS, now
        elif end is None:
            assert start is not None
            end = start + SEVEN_DAYS_MS
        elif start is None:
            start = end - SEVEN_DAYS_MS
        rows = sorted(
            (
                {k: v for k, v in r.items() if k != "category"}
                for r in self.history
                if r["category"] == category and start <= int(r["execTime"]) <= end
            ),
            key=lambda r: int(r["execTime"]),
            reverse=True,
        )
        return self._page(rows, query, 100, {"category": category})

    def _page(
        self,
        rows: list[dict[str, Any]],
        query: dict[str, str],
        max_limit: int,
        extra: dict[str, Any],
    ) -> JSONResponse:
        limit = int(query.get("limit", "50"))
        if not 1 <= limit <= max_limit:
            return self._error(10001, f"limit must be in [1, {max_limit}]", "page")
        # Opaque to the client: "offset:<n>", percent-encoded as Bybit's cursors are.
        cursor = unquote(query.get("cursor", "")) if query.get("cursor") else ""
        offset = int(cursor.split(":")[1].split(",")[0]) if cursor else 0
        page = rows[offset : offset + limit]
        more = offset + limit < len(rows)
        next_cursor = f"offset%3A{offset + limit}%2Cfake" if more else ""
        return self._ok({**extra, "list": page, "nextPageCursor": next_cursor})
