"""A loopback Hyperliquid that trades: /exchange ``order`` actions signed by an account's API
wallet, /info (``meta``, ``orderStatus``, ``clearinghouseState``, ``userFillsByTime``) and the
private websocket (``orderUpdates``, ``userFills``).

As the venue does (hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api):
- signing: the signer is recovered from each action's EIP-712 signature (eth-account); a
  signer that is no API wallet of an account is answered
  ``{"status": "err", "response": "User or API Wallet 0x... does not exist."}``, which is also
  what a wrong signature or the other network's source yields (nonces-and-api-wallets, signing);
- nonces: per signer, the 100 highest are kept; a nonce must exceed the smallest of them,
  never repeat and lie within (now - 2 days, now + 1 day) (``Invalid nonce: ...``);
- tick and lot size: 5 significant figures and at most ``6 - szDecimals`` decimals (integer
  prices always valid), sizes on ``szDecimals``; a $10 minimum notional; reduce-only orders
  that would increase the position are refused; the per-order error strings are those of the
  error-responses page (invalid price/size: "Order has invalid price." / "... size.");
- an IOC fills at once at the coin's set price when its limit crosses it (optionally only a
  fraction); the unfilled rest is canceled; no match at all is the IocCancel error;
- each placed order can be queried by oid or cloid; its updates and fills are pushed;
- REST weight is limited per minute (1200 by default) and answered 429 beyond;
- websocket ``post`` requests (websocket/post-requests) get the /exchange or /info answer on
  the ``post`` channel, or ``{"type": "error", "payload": "<status> <text>"}``.

Not documented by the venue, chosen here: the text of a duplicate-cloid refusal and of an
unknown asset index.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.websockets import WebSocket

from app.domain.decimals import fmt, round_down
from app.venues.hyperliquid.rules import is_valid_price
from app.venues.hyperliquid.schemas import Signature
from app.venues.hyperliquid.signing import recover_signer
from tests.venues.harness import FakeVenue

UNIVERSE = (("BTC", 5, False), ("ETH", 4, False), ("SOL", 2, False), ("OLD", 1, True))
DUPLICATE_CLOID = "Duplicate cloid."
BAD_BODY = "Failed to deserialize the JSON body into the target type"
KEPT_NONCES = 100
DAY_MS = 86_400_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Account:
    equity: Decimal = Decimal("100000")
    positions: dict[str, Decimal] = field(default_factory=dict)
    # Notional beyond which an order needs more margin than the account has.
    max_notional: Decimal = Decimal("1000000")


@dataclass
class FakeHyperliquidTrading(FakeVenue):
    mainnet: bool = False
    accounts: dict[str, Account] = field(default_factory=dict)
    agents: dict[str, str] = field(default_factory=dict)  # agent address -> account address
    prices: dict[str, Decimal] = field(default_factory=dict)  # where IOC orders fill
    fill_fraction: Decimal = Decimal(1)
    # szDecimals the matching engine holds to when they differ from what meta says (a coin
    # whose lot size changed after the client read meta).
    sz_decimals: dict[str, int] = field(default_factory=dict)
    weight_per_minute: int = 1200
    throttled: int = 0  # answer the next N requests 429
    # Apply the next N orders but answer 503 (the client cannot know it was applied).
    lose_answers: int = 0
    posts: int = 0  # requests that came as websocket posts
    actions: list[dict[str, Any]] = field(default_factory=list)  # /exchange bodies, any path
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)  # oid -> WsOrder
    by_cloid: dict[tuple[str, str], int] = field(default_factory=dict)
    placements: Counter[str] = field(default_factory=Counter)  # cloid -> orders taken
    fills: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # user -> WsFill
    nonces: dict[str, list[int]] = field(default_factory=dict)
    _spent: deque[tuple[float, int]] = field(default_factory=deque)
    _subs: dict[WebSocket, set[tuple[str, str]]] = field(default_factory=dict)
    _oids: itertools.count[int] = field(default_factory=lambda: itertools.count(77_000_001))
    _tids: itertools.count[int] = field(default_factory=lambda: itertools.count(500_000_001))

    def register(self, address: str, agent: str, account: Account | None = None) -> Account:
        """An account and the API wallet it approved."""
        self.accounts[address.lower()] = account or Account()
        self.agents[agent.lower()] = address.lower()
        return self.accounts[address.lower()]

    # -- REST ---------------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/exchange", self._exchange, methods=["POST"]),
            Route("/info", self._info, methods=["POST"]),
        ]

    def _limited(self, weight: int) -> bool:
        now = time.monotonic()
        while self._spent and self._spent[0][0] < now - 60:
            self._spent.popleft()
        if self.throttled > 0:
            self.throttled -= 1
            return True
        if sum(w for _, w in self._spent) + weight > self.weight_per_minute:
            return True
        self._spent.append((now, weight))
        return False

    async def _body(self, request: Request) -> dict[str, Any] | None:
        call = await self.record(request)
        try:
            body = json.loads(call.body)
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    async def _exchange(self, request: Request) -> Response:
        return _http(*await self.exchange(await self._body(request)))

    async def exchange(self, body: dict[str, Any] | None) -> tuple[int, Any]:
        """(HTTP status, answer) of an /exchange request, over REST or a websocket post."""
        if self._limited(1):
            return 429, "Too Many Requests"
        if body is not None:
            self.actions.append(body)
        try:
            assert body is not None
            action, nonce = body["action"], body["nonce"]
            signature = Signature(**body["signature"])
            signer = recover_signer(
                action, signature, nonce, self.mainnet, body.get("vaultAddress"),
                body.get("expiresAfter"),
            )  # fmt: skip
        except (AssertionError, KeyError, TypeError, ValueError):
            return 422, BAD_BODY
        user = self.agents.get(signer)
        if user is None:
            return 200, _err(f"User or API Wallet {signer} does not exist.")
        refusal = self._use_nonce(signer, nonce)
        if refusal:
            return 200, _err(refusal)
        if action.get("type") != "order" or not isinstance(action.get("orders"), list):
            return 422, BAD_BODY
        statuses = [await self._order(user, order) for order in action["orders"]]
        if self.lose_answers > 0:
            self.lose_answers -= 1
            return 503, "upstream gone"
        return 200, {"status": "ok", "response": {"type": "order", "data": {"statuses": statuses}}}

    def _use_nonce(self, signer: str, nonce: int) -> str | None:
        kept = self.nonces.setdefault(signer, [])
        if nonce in kept:
            return f"Invalid nonce: duplicate nonce {nonce}"
        if len(kept) >= KEPT_NONCES and nonce <= kept[0]:
            return f"Invalid nonce: nonce too low {nonce} < {kept[0]}"
        if not now_ms() - 2 * DAY_MS < nonce < now_ms() + DAY_MS:
            return f"Invalid nonce: nonce too far from now {nonce}"
        kept.append(nonce)
        kept.sort()
        del kept[:-KEPT_NONCES]
        return None

    async def _order(self, user: str, wire: dict[str, Any]) -> dict[str, Any]:
        index, cloid = wire["a"], wire.get("c")
        if not 0 <= index < len(UNIVERSE) or UNIVERSE[index][2]:
            return {"error": f"Unknown asset {index}."}
        coin, sz_decimals, _ = UNIVERSE[index]
        sz_decimals = self.sz_decimals.get(coin, sz_decimals)
        if cloid is not None and (user, cloid) in self.by_cloid:
            return {"error": DUPLICATE_CLOID}
        px, sz, buy = Decimal(wire["p"]), Decimal(wire["s"]), bool(wire["b"])
        if not is_valid_price(px, sz_decimals):
            return {"error": "Order has invalid price."}
        if sz <= 0 or -int(sz.normalize().as_tuple().exponent) > sz_decimals:
            return {"error": "Order has invalid size."}
        account = self.accounts[user]
        position = account.positions.get(coin, Decimal(0))
        refusal = None
        if sz * px < 10:
            refusal = ("minTradeNtlRejected", "Order must have minimum value of $10.")
        elif wire["r"] and (position == 0 or (position > 0) == buy):
            refusal = ("reduceOnlyRejected", "Reduce only order would increase position.")
        elif sz * px > account.max_notional:
            refusal = ("perpMarginRejected", "Insufficient margin to place order.")
        oid = next(self._oids)
        order = {
            "coin": coin, "side": "B" if buy else "A", "limitPx": wire["p"], "sz": wire["s"],
            "oid": oid, "timestamp": now_ms(), "origSz": wire["s"], "cloid": cloid,
            "tif": "Ioc", "reduceOnly": bool(wire["r"]),
        }  # fmt: skip
        if cloid is not None:
            self.by_cloid[(user, cloid)] = oid
            self.placements[cloid] += 1
        if refusal is not None:
            await self._update(user, order, refusal[0])
            return {"error": refusal[1]}
        price = self.prices.get(coin)
        size = round_down(sz * self.fill_fraction, Decimal(1).scaleb(-sz_decimals))
        if price is None or size <= 0 or (px < price if buy else px > price):
            await self._update(user, order, "iocCancelRejected")
            return {"error": "Order could not immediately match against any resting orders."}
        order["sz"] = fmt(sz - size)
        await self._update(user, order, "filled" if size == sz else "canceled")
        await self._fill(user, order, size, price, position)
        account.positions[coin] = position + (size if buy else -size)
        filled = {"totalSz": fmt(size), "avgPx": fmt(price), "oid": oid}
        return {"filled": filled | ({"cloid": cloid} if cloid else {})}

    async def _update(self, user: str, order: dict[str, Any], status: str) -> None:
        update = {"order": order, "status": status, "statusTimestamp": now_ms()}
        self.orders[order["oid"]] = update
        await self._push(user, "orderUpdates", [update])

    async def _fill(
        self, user: str, order: dict[str, Any], size: Decimal, price: Decimal, start: Decimal
    ) -> None:
        buy = order["side"] == "B"
        fill = {
            "coin": order["coin"], "px": fmt(price), "sz": fmt(size), "side": order["side"],
            "time": now_ms(), "startPosition": fmt(start), "dir": _dir(start, buy, size),
            "closedPnl": "0.0", "hash": "0x" + "00" * 32, "oid": order["oid"], "crossed": True,
            "fee": "0.0", "tid": next(self._tids), "feeToken": "USDC",
        }  # fmt: skip
        self.fills.setdefault(user, []).append(fill)
        await self._push(user, "userFills", {"user": user, "fills": [fill]})

    async def _info(self, request: Request) -> Response:
        return _http(*self.info(await self._body(request)))

    def info(self, body: dict[str, Any] | None) -> tuple[int, Any]:
        """(HTTP status, answer) of an /info request, over REST or a websocket post."""
        if body is None:
            return 422, BAD_BODY
        kind = body.get("type")
        if self._limited(2 if kind in ("orderStatus", "clearinghouseState") else 20):
            return 429, "Too Many Requests"
        if kind == "meta":
            universe = [
                {"name": n, "szDecimals": d, "maxLeverage": 50}
                | ({"isDelisted": True} if x else {})
                for n, d, x in UNIVERSE
            ]
            return 200, {"universe": universe}
        user = str(body.get("user", "")).lower()
        if kind == "orderStatus":
            ref = body.get("oid")
            oid = self.by_cloid.get((user, ref)) if isinstance(ref, str) else ref
            if oid not in self.orders:
                return 200, {"status": "unknownOid"}
            return 200, {"status": "order", "order": self.orders[oid]}
        if kind == "clearinghouseState":
            return 200, self.state(user)
        if kind == "userFillsByTime":
            start = body.get("startTime", 0)
            return 200, [f for f in self.fills.get(user, []) if f["time"] >= start]
        return 422, BAD_BODY

    def state(self, user: str) -> dict[str, Any]:
        account = self.accounts.get(user, Account(equity=Decimal(0)))
        summary = {
            "accountValue": fmt(account.equity),
            "totalMarginUsed": "0.0",
            "totalNtlPos": "0.0",
            "totalRawUsd": fmt(account.equity),
        }
        positions = [
            {"position": {"coin": coin, "szi": fmt(size), "entryPx": "1.0"}, "type": "oneWay"}
            for coin, size in account.positions.items()
            if size != 0
        ]
        return {
            "assetPositions": positions,
            "crossMarginSummary": summary,
            "marginSummary": summary,
            "time": now_ms(),
            "withdrawable": fmt(account.equity),
        }

    # -- websocket ----------------------------------------------------------------------------

    async def on_message(self, ws: WebSocket, message: Any) -> None:
        if isinstance(message, dict) and message.get("method") == "ping":
            await self.send(ws, {"channel": "pong"})
            return
        if isinstance(message, dict) and message.get("method") == "post":
            await self._post(ws, message)
            return
        sub = message.get("subscription") if isinstance(message, dict) else None
        kind = sub.get("type") if isinstance(sub, dict) else None
        user = sub.get("user") if isinstance(sub, dict) else None
        if kind not in ("orderUpdates", "userFills") or not isinstance(user, str):
            await self.send(ws, {"channel": "error", "data": f"Invalid subscription {message}"})
            return
        self._subs.setdefault(ws, set()).add((kind, user.lower()))
        await self.send(ws, {"channel": "subscriptionResponse", "data": message})
        if kind == "userFills":
            history = self.fills.get(user.lower(), [])
            snapshot = {"isSnapshot": True, "user": user.lower(), "fills": history}
            await self.send(ws, {"channel": "userFills", "data": snapshot})
        if {("orderUpdates", user.lower()), ("userFills", user.lower())} <= self._subs[ws]:
            self.mark_subscribed()

    async def _post(self, ws: WebSocket, message: dict[str, Any]) -> None:
        """A websocket post: the /exchange or /info answer on the ``post`` channel; an answer
        lost (``lose_answers``) is a connection dropped after the order was applied."""
        request = message.get("request")
        kind = request.get("type") if isinstance(request, dict) else None
        payload = request.get("payload") if isinstance(request, dict) else None
        self.posts += 1
        if kind == "action":
            status, answer = await self.exchange(payload)
        elif kind == "info":
            status, answer = self.info(payload)
        else:
            status, answer = 422, BAD_BODY
        if status == 503:
            await ws.close(code=1011)
            return
        if status == 200:
            response = {"type": kind, "payload": answer}
        else:
            response = {"type": "error", "payload": f"{status} {answer}"}
        await self.send(
            ws, {"channel": "post", "data": {"id": message.get("id"), "response": response}}
        )

    async def _push(self, user: str, kind: str, data: Any) -> None:
        for ws, subs in list(self._subs.items()):
            if ws in self.sockets and (kind, user) in subs:
                await self.send(ws, {"channel": kind, "data": data})


def _dir(start: Decimal, buy: bool, size: Decimal) -> str:
    """The fill's ``dir`` display string, as the venue derives it from the position."""
    if start == 0 or (start > 0) == buy:
        return "Open Long" if buy else "Open Short"
    if size <= abs(start):
        return "Close Short" if buy else "Close Long"
    return "Short > Long" if buy else "Long > Short"


def _err(message: str) -> dict[str, Any]:
    return {"status": "err", "response": message}


def _http(status: int, answer: Any) -> Response:
    if isinstance(answer, str):
        return Response(answer, status_code=status)
    return JSONResponse(answer, status_code=status)
