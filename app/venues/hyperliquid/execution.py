"""Hyperliquid follower accounts: orders signed by the account's API wallet (agent).

An order is an ``order`` action POSTed to /exchange (exchange-endpoint docs), one IOC limit
per request, with grouping "na" and a cloid derived from the order id. A market order is an
IOC limit bounded around the reference price (rules.MARKET_SLIPPAGE). /info answers
``meta`` (asset index = position in ``universe``; ``szDecimals``), ``orderStatus`` by cloid
and ``clearinghouseState`` (equity = ``marginSummary.accountValue``; positions from
``assetPositions[].position.szi``). Hyperliquid has no hedge mode: accounts are one-way.

Rate limits (rate-limits docs): REST requests share 1200 weight a minute per IP; an exchange
action weighs 1, ``orderStatus`` and ``clearinghouseState`` 2, ``meta`` and
``userFillsByTime`` 20. The client-side limiter spends those weights before each request;
pass one limiter to every client of a process so that they share the IP's budget.

Past 400 lines on purpose: this is one execution client, the shape every venue's has
(``build``, ``place``, ``query``, ``account``, ``events``); the signing, the websocket post,
the schemas, the rules, the instruments and the stream already live beside it. What stays is
the client's own state (asset meta, weighted limiter, nonces, session) and the calls that use
it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal, Protocol, TypeVar

import aiohttp
import msgspec
import structlog
from aiolimiter import AsyncLimiter

from app.domain.decimals import fmt
from app.security.crypto import Credential
from app.venues.execution import (
    AccountError,
    AccountEvent,
    AccountSnapshot,
    OrderRequest,
    OrderState,
    OutcomeUnknown,
    RateLimited,
    RejectReason,
    VenueOrder,
    check_send_by,
)
from app.venues.hyperliquid.post import PostError, WsPoster
from app.venues.hyperliquid.rules import (
    CLOID,
    cloid_for,
    error_outcome,
    is_duplicate_cloid,
    limit_price,
    order_size,
    status_outcome,
)
from app.venues.hyperliquid.schemas import (
    AssetMeta,
    ClearinghouseState,
    ExchangeOk,
    ExchangeResponse,
    Meta,
    OrderAction,
    OrderStatusResponse,
    OrderWire,
    UserFill,
)
from app.venues.hyperliquid.signing import L1Signer, NonceClock
from app.venues.hyperliquid.stream import OrderBook
from app.venues.hyperliquid.ws import private_stream

log = structlog.get_logger(__name__)

MAINNET_API_URL = "https://api.hyperliquid.xyz"
TESTNET_API_URL = "https://api.hyperliquid-testnet.xyz"
WEIGHT_PER_MINUTE = 1200
_WEIGHTS = {"exchange": 1, "orderStatus": 2, "clearinghouseState": 2}
_HEAVY = 20  # every other info request (meta, userFillsByTime)
META_REFRESH_S = 60.0
# Without a Retry-After header, wait this long after a 429.
DEFAULT_RETRY_AFTER_S = 1.0
_IOC = {"limit": {"tif": "Ioc"}}
T = TypeVar("T")


class AccountSource(Protocol):
    """What a client is built from: an account's stored config and decrypted credentials."""

    @property
    def config(self) -> Mapping[str, Any]: ...

    @property
    def credentials(self) -> Mapping[str, Credential]: ...

    @property
    def timeout_s(self) -> float: ...


def build(account: AccountSource) -> HyperliquidExecution:
    """The client of a stored ``{"kind": "hyperliquid", "address", "agent_key"}`` account."""
    rest_url = str(account.config.get("rest_url") or MAINNET_API_URL)
    ws_url = account.config.get("ws_url")
    return HyperliquidExecution(
        str(account.config["address"]),
        account.credentials["agent_key"],
        rest_url=rest_url,
        ws_url=str(ws_url) if ws_url else None,
        timeout_s=account.timeout_s,
    )


def ws_url_for(rest_url: str) -> str:
    """The websocket URL beside a REST base URL (https://host -> wss://host/ws)."""
    return rest_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + "/ws"


class HyperliquidExecution:
    """One follower account on Hyperliquid (``ExecutionClient``).

    ``address`` is the account (master or sub-account) that trades; ``agent_key`` the private
    key of an API wallet the account approved: it can place orders, never withdraw.
    ``mainnet`` picks the signature's source ("a" mainnet, "b" testnet); unset, it is decided
    as the official SDK does: mainnet exactly when ``rest_url`` is the mainnet URL.
    """

    venue = "hyperliquid"

    def __init__(
        self,
        address: str,
        agent_key: Credential,
        *,
        rest_url: str = MAINNET_API_URL,
        ws_url: str | None = None,
        mainnet: bool | None = None,
        session: aiohttp.ClientSession | None = None,
        limiter: AsyncLimiter | None = None,
        timeout_s: float = 10.0,
        ws_post: bool = True,
    ) -> None:
        self.address = address.lower()
        self.rest_url = rest_url.rstrip("/")
        self.ws_url = ws_url or ws_url_for(self.rest_url)
        self.mainnet = self.rest_url == MAINNET_API_URL if mainnet is None else mainnet
        self._signer = L1Signer(agent_key.reveal(), self.mainnet)
        self._nonces = NonceClock()
        self._session = session
        self._owns_session = session is None
        self._limiter = limiter or AsyncLimiter(WEIGHT_PER_MINUTE, 60)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._timeout_s = timeout_s
        self.ws_post = ws_post
        self._poster: WsPoster | None = None
        self._assets: dict[str, tuple[int, AssetMeta]] = {}
        self._meta_read_at = -META_REFRESH_S
        self._book = OrderBook()

    @property
    def agent_address(self) -> str:
        return self._signer.address

    def client_order_id(self, order_id: str) -> str:
        return cloid_for(order_id)

    # -- transport --------------------------------------------------------------------------

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def _post(self, path: str, body: dict[str, Any], weight: int) -> bytes:
        """Send a request; the answer's body. RateLimited on 429, OutcomeUnknown when the
        request may have been applied but we cannot know (timeout, dropped connection, 5xx).

        A websocket post first (one pipelined connection, no HTTP round trip); REST when that
        connection cannot be opened, which happens before anything is sent.
        """
        await self._limiter.acquire(weight)
        if self.ws_post:
            if self._poster is None:
                self._poster = WsPoster(self._http(), self.ws_url, self._timeout_s)
            kind: Literal["action", "info"] = "action" if path == "/exchange" else "info"
            try:
                return await self._poster.request(kind, body)
            except PostError as exc:
                raise _Refused(str(exc)) from exc
            except (aiohttp.ClientError, OSError) as exc:
                log.info("hyperliquid_ws_post_unavailable", error=f"{type(exc).__name__}: {exc}")
            except OutcomeUnknown as exc:
                if kind == "action":
                    raise
                # A read changes nothing at the venue: ask again over REST.
                log.info("hyperliquid_ws_post_lost", error=str(exc))
        try:
            async with self._http().post(
                self.rest_url + path, json=body, timeout=self._timeout
            ) as response:
                content = await response.read()
                if response.status == 429:
                    raise RateLimited(_retry_after(response.headers.get("Retry-After")))
                if response.status >= 500:
                    raise OutcomeUnknown(f"{path}: HTTP {response.status}")
                if response.status != 200:
                    # 4xx other than 429: the venue could not read the request, so did nothing.
                    raise _Refused(f"HTTP {response.status}: {content[:200]!r}")
                return content
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise OutcomeUnknown(f"{path}: {type(exc).__name__}: {exc}") from exc

    async def _info(self, body: dict[str, Any], kind: type[T]) -> T:
        try:
            content = await self._post("/info", body, _WEIGHTS.get(body["type"], _HEAVY))
        except _Refused as exc:
            raise OutcomeUnknown(f"{body['type']}: {exc}") from exc
        try:
            return msgspec.json.decode(content, type=kind)
        except msgspec.DecodeError as exc:
            raise OutcomeUnknown(f"{body['type']}: unreadable answer: {exc}") from exc

    async def _asset(self, coin: str) -> tuple[int, AssetMeta] | None:
        """The coin's asset index and rules. A coin not seen makes meta be read again (a new
        listing), at most once a minute so that orders in unknown coins cost no weight."""
        now = time.monotonic()
        if coin not in self._assets and now - self._meta_read_at >= META_REFRESH_S:
            meta = await self._info({"type": "meta"}, Meta)
            self._assets = {asset.name: (i, asset) for i, asset in enumerate(meta.universe)}
            self._meta_read_at = now
        found = self._assets.get(coin)
        return None if found is None or found[1].is_delisted else found

    # -- orders -----------------------------------------------------------------------------

    async def place(self, request: OrderRequest) -> VenueOrder:
        cloid = self._cloid(request.client_id)
        found = await self._asset(request.symbol)
        if found is None:
            return _refused(request, RejectReason.UNKNOWN_SYMBOL, "unknown or delisted coin")
        index, asset = found
        size = order_size(request.qty, asset.sz_decimals)
        if size <= 0:
            return _refused(
                request,
                RejectReason.BELOW_MIN_NOTIONAL,
                f"qty {fmt(request.qty)} is below the size step of {asset.sz_decimals} decimals",
            )
        price = limit_price(
            request.side, request.reference_price, request.limit_price, asset.sz_decimals
        )
        if price <= 0:
            return _refused(request, RejectReason.BAD_PRECISION, "no valid price that low")
        wire = OrderWire(
            a=index,
            b=request.side == "buy",
            p=fmt(price),
            s=fmt(size),
            r=request.reduce_only,
            t=_IOC,
            c=cloid,
        )
        action = OrderAction(orders=[wire]).wire()
        check_send_by()  # the asset lookup above may have waited on the venue
        try:
            answer = await self._exchange(action)
        except _Refused as exc:
            return _refused(request, RejectReason.VENUE_ERROR, str(exc))
        if isinstance(answer, str):
            return _refused(request, RejectReason.VENUE_ERROR, answer)
        return await self._outcome(request, cloid, size, answer)

    async def _exchange(self, action: dict[str, Any]) -> ExchangeOk | str:
        """Sign and send an action: the venue's answer, or its top-level refusal text."""
        for _ in range(2):
            nonce = self._nonces.next()
            body = {
                "action": action,
                "nonce": nonce,
                "signature": msgspec.to_builtins(self._signer.sign(action, nonce)),
                "vaultAddress": None,
            }
            content = await self._post("/exchange", body, _WEIGHTS["exchange"])
            try:
                answer = msgspec.json.decode(content, type=ExchangeResponse)
            except msgspec.DecodeError as exc:
                raise OutcomeUnknown(f"exchange: unreadable answer: {exc}") from exc
            if answer.status == "ok" and isinstance(answer.response, ExchangeOk):
                return answer.response
            message = str(answer.response)[:300]
            # "Invalid nonce: duplicate nonce N" / "nonce too low": the action was not applied
            # (another process signs with this agent too): once more with a fresh nonce.
            if not message.startswith("Invalid nonce"):
                break
            self._nonces.skip_to(_trailing_int(message))
        # The signer is not an API wallet of any account (or signed for the other network):
        # nothing this account sends will be accepted until it is reconfigured.
        if "does not exist" in message:
            raise AccountError(
                f"{message} (agent {self.agent_address} must be an approved API wallet of "
                f"{self.address} on {'mainnet' if self.mainnet else 'testnet'})"
            )
        return message

    async def _outcome(
        self, request: OrderRequest, cloid: str, size: Decimal, answer: ExchangeOk
    ) -> VenueOrder:
        statuses = answer.data.statuses if answer.data is not None else []
        if len(statuses) != 1:
            raise OutcomeUnknown(f"exchange: expected one order status, got {len(statuses)}")
        status = statuses[0]
        if isinstance(status, str):  # waitingForFill
            return VenueOrder(request.client_id, OrderState.ACCEPTED, raw_message=status)
        if status.filled is not None:
            filled = status.filled
            self._book.remember(filled.oid, cloid, size)
            return VenueOrder(
                client_id=request.client_id,
                # An IOC's unfilled rest is canceled at once: a partial fill is its end.
                state=OrderState.FILLED if filled.total_sz >= size else OrderState.EXPIRED,
                filled_qty=filled.total_sz,
                avg_price=filled.avg_px,
                venue_order_id=str(filled.oid),
            )
        if status.resting is not None:
            self._book.remember(status.resting.oid, cloid, size)
            return VenueOrder(
                request.client_id, OrderState.ACCEPTED, venue_order_id=str(status.resting.oid)
            )
        message = status.error or "no status"
        if is_duplicate_cloid(message):
            existing = await self.query(request.symbol, request.client_id)
            if existing is None:
                raise OutcomeUnknown(f"exchange: {message!r} but orderStatus does not know it")
            return existing
        state, reason = error_outcome(message)
        return VenueOrder(request.client_id, state, reason=reason, raw_message=message)

    async def query(self, symbol: str, client_id: str) -> VenueOrder | None:
        cloid = self._cloid(client_id)
        answer = await self._info(
            {"type": "orderStatus", "user": self.address, "oid": cloid}, OrderStatusResponse
        )
        if answer.status != "order" or answer.order is None:
            return None  # "unknownOid": the venue never took an order with this cloid
        order = answer.order.order
        filled = order.orig_sz - order.sz
        state, reason = status_outcome(answer.order.status, filled, order.orig_sz)
        avg_price = await self._average_price(order.oid, order.timestamp) if filled else None
        return VenueOrder(
            client_id=client_id,
            state=state,
            filled_qty=filled,
            avg_price=avg_price,
            venue_order_id=str(order.oid),
            reason=reason,
            raw_message=answer.order.status if reason is not None else None,
        )

    async def _average_price(self, oid: int, since_ms: int) -> Decimal | None:
        """The order's average fill price, from the account's fills since it was placed
        (orderStatus tells how much filled, not at what price)."""
        fills = await self._info(
            {"type": "userFillsByTime", "user": self.address, "startTime": since_ms},
            list[UserFill],
        )
        mine = [fill for fill in fills if fill.oid == oid]
        qty = sum((fill.sz for fill in mine), Decimal(0))
        return sum((fill.sz * fill.px for fill in mine), Decimal(0)) / qty if qty else None

    def _cloid(self, client_id: str) -> str:
        # The loop passes client_order_id(order_id); an order id itself is converted too.
        return client_id if CLOID.match(client_id) else cloid_for(client_id)

    # -- account ----------------------------------------------------------------------------

    async def account(self) -> AccountSnapshot:
        state = await self._info(
            {"type": "clearinghouseState", "user": self.address}, ClearinghouseState
        )
        at = (
            datetime.fromtimestamp(state.time / 1000, UTC)
            if state.time is not None
            else datetime.now(UTC)
        )
        return AccountSnapshot(
            # accountValue: collateral plus the unrealized PnL of every perp position.
            equity=state.margin_summary.account_value,
            positions={
                row.position.coin: row.position.szi
                for row in state.asset_positions
                if row.position.szi != 0
            },
            one_way=True,
            at=at,
        )

    def events(self) -> AsyncIterator[AccountEvent]:
        return private_stream(self._http(), self.ws_url, self.address, self._book)

    async def close(self) -> None:
        if self._poster is not None:
            await self._poster.close()
            self._poster = None
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None


class _Refused(Exception):
    """The venue answered 4xx (not 429): the request was not applied."""


def _refused(request: OrderRequest, reason: RejectReason, message: str) -> VenueOrder:
    return VenueOrder(request.client_id, OrderState.REJECTED, reason=reason, raw_message=message)


def _trailing_int(message: str) -> int:
    words = message.replace("<", " ").split()
    numbers = [int(word) for word in words if word.isdigit()]
    return max(numbers, default=0)


def _retry_after(header: str | None) -> float:
    try:
        return max(float(header), 0.0) if header else DEFAULT_RETRY_AFTER_S
    except ValueError:
        return DEFAULT_RETRY_AFTER_S
