"""One follower account's executor: the order stream in, orders on the venue, reports back.

The same loop for every venue; it drives an :class:`ExecutionClient` and never sees a wire
format. Three supervised loops per account:

- the orders: the follower's stream in group ``copytrade-exec``, read by the instance's shared
  reads (``app.executors.protocol.consumer.OrderReads``) and handled here one order at a time,
  so that an account sees its orders in sizing order;
- the account: equity, positions and position mode over REST at start and every
  ``equity_interval_s`` (sooner after a fill), stored as equity snapshots and venue positions;
  open orders are polled by client id, in case the private stream missed their end;
- the private stream: order updates become reports, position pushes venue positions.

Exactly once at the venue. An order is sent only (a) on its first delivery, or (b) after the
venue said it has no order with its client id. A crash after sending leaves the stream entry
unacknowledged: it is delivered again (count > 1), so (b) applies. An unknown outcome (a
timeout, a 5xx, a dropped connection) is resolved the same way before anything is resent,
and a query that fails leaves the entry for a later delivery. A duplicate-id refusal means
placed. A found order that ended (expired, canceled) is reported as it is, never re-placed.

Nothing leaves after a disconnection answers (DELETE). It fences the stream off and removes
its group in one step, so every order delivered was delivered before the fence, by a read
sent earlier still; it then waits longer than ``FENCE_WINDOW_S`` before it answers. An order
leaves without asking Redis only while its read is younger than that window (checked at the
last moment before sending, ``FENCE_BY``); any other reads the fence key first, and leaves
within the same window of that answer or asks again.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal, cast
from uuid import UUID

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.repositories.follower_accounts import FollowerAccountRepository
from app.db.session import UnitOfWork
from app.executors.protocol.consumer import (
    Delivery,
    Order,
    OrderReads,
    valid_until,
)
from app.executors.protocol.messages import reference_price
from app.loops import Backoff, SupervisedTask
from app.pipeline import Pipeline
from app.redisconn import AnyRedis
from app.venues.execution import (
    FENCE_BY,
    HELD,
    SEND_BY,
    AccountError,
    AccountEvent,
    ExecutionClient,
    Expired,
    FenceUnchecked,
    LeaseLapsed,
    OrderRequest,
    OrderState,
    OutcomeUnknown,
    RateLimited,
    RejectReason,
    VenueOrder,
)
from app.venues.fences import FenceChecks
from app.venues.leases import Hold

log = structlog.get_logger(__name__)

GROUP = "copytrade-exec"
# Client ids of the orders this executor placed, to tell its own in the private stream.
RECENT_ORDERS = 10_000
# After a fill the account is read once fills have paused this long (one read for a burst,
# and not in the way of the next fill's order), and at the latest this long after the first
# fill not yet read: a steady stream of fills gets one read (and drift check) a second.
REFRESH_QUIET_S = 0.25
REFRESH_AFTER_FILL_MAX_S = 1.0
# An order leaves without a look at its account's fence while the read that delivered it was
# sent less than this long ago (the execute role's reads block for less); a disconnection
# waits longer than this for the orders it finds in hand (``accounts.disconnect``).
FENCE_WINDOW_S = 1.5
# The work that follows orders (the pushes' storing, the account read) waits until the
# instance handed out no order for REFRESH_AFTER_FILL_S, or AFTER_ORDERS_MOST_S at most: a fill
# fanned out to many accounts is placed first.
REFRESH_AFTER_FILL_S = 0.25
AFTER_ORDERS_MOST_S = 2.0
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]")
_REPORTED = {
    OrderState.ACCEPTED: "accepted",
    OrderState.PARTIALLY_FILLED: "partially_filled",
    OrderState.FILLED: "filled",
    OrderState.CANCELED: "expired",
    OrderState.EXPIRED: "expired",
    OrderState.REJECTED: "rejected",
}
# Refusals that say the venue's instrument rules differ from the ones sizing used.
_RULES = frozenset({RejectReason.BAD_PRECISION, RejectReason.BELOW_MIN_NOTIONAL})
HEDGE_MODE = (
    "the account is in hedge mode (dual side positions): Copytrade places orders in one-way "
    "mode only; switch the account to one-way mode"
)


class Disconnected(RuntimeError):
    """The account's DELETE fenced its executor off."""


@dataclass(frozen=True, slots=True)
class ExecutorParams:
    equity_interval_s: float
    claim_idle_ms: int
    retry_initial_s: float
    retry_max_s: float


@dataclass(slots=True)
class _Placed:
    order_id: str
    symbol: str
    qty: Decimal
    open: bool
    # The last (status, filled) reported: the venue's answer and its private stream often
    # tell the same thing, and a repeat would cost the report reader a transaction for nothing.
    reported: tuple[str, Decimal] | None = None


class AccountExecutor:
    def __init__(
        self,
        follower_id: UUID,
        client: ExecutionClient,
        redis: AnyRedis,
        sessionmaker: async_sessionmaker[AsyncSession],
        pipeline: Pipeline,
        params: ExecutorParams,
        me: str,
        orders: OrderReads,
        db_slots: asyncio.Semaphore | None = None,
        on_rules_refused: Callable[[str], None] | None = None,
        on_positions: Callable[[UUID], Awaitable[None]] | None = None,
        fences: FenceChecks | None = None,
        hold: Hold | None = None,
    ) -> None:
        self.follower_id = follower_id
        # Shared by an instance's executors: a fill's checks go in one round trip.
        self._fences = fences or FenceChecks(redis)
        # This instance's hold on the account's lease: no order leaves without it (None: the
        # executor runs unleased, in tests).
        self._hold = hold
        # Told after each reading of the venue's positions is stored (the drift check).
        self._on_positions = on_positions
        # Shared by an instance's executors: their account writes never take the whole pool.
        self._db_slots = db_slots or asyncio.Semaphore(1)
        # Told the venue when it refused an order for its precision or minimums: the
        # instrument rules sizing used may be out of date.
        self._on_rules_refused = on_rules_refused
        self.client = client
        self._redis = redis
        self._sessionmaker = sessionmaker
        self._pipeline = pipeline
        self._params = params
        self._me = me
        self.reports = orders.reports
        self._orders = orders
        self.status = "connecting"
        self.last_error: str | None = None
        self._ready = asyncio.Event()
        self._refresh = asyncio.Event()
        self._placed: OrderedDict[str, _Placed] = OrderedDict()
        backoff = (params.retry_initial_s, params.retry_max_s)
        self._loops = [
            SupervisedTask(f"executor:{follower_id}", self._consume, Backoff(*backoff)),
            SupervisedTask(f"account:{follower_id}", self._account_loop, Backoff(*backoff)),
            SupervisedTask(f"account_stream:{follower_id}", self._stream, Backoff(*backoff)),
            SupervisedTask(f"account_pushes:{follower_id}", self._write_pushes, Backoff(*backoff)),
        ]
        # What the private stream pushed and is not stored yet: the latest of each.
        self._pushed: dict[str, Decimal] = {}
        self._pushed_equity: Decimal | None = None
        self._pushed_at = datetime.now(UTC)
        self._push_due = asyncio.Event()

    def start(self) -> None:
        for loop in self._loops:
            loop.start()

    async def stop(self) -> None:
        for loop in self._loops:
            await loop.stop()
        await self.client.close()

    @property
    def alive(self) -> bool:
        return all(loop.alive for loop in self._loops)

    # -- orders -----------------------------------------------------------------------------

    async def _consume(self, backoff: Backoff) -> None:
        await self._ready.wait()  # the account is read and in one-way mode
        backoff.reset()
        # Its group was made by PUT .../account; made again only if Redis lost it, never once
        # the account is disconnected (fenced: DELETE removed the group, it stays removed).
        await self._orders.consume(self.follower_id, self.handle)

    async def handle(self, order: Order, delivery: Delivery) -> None:
        """Place one order exactly once (see the module docstring); report what happened."""
        order_id: str = order["order_id"]
        qty = Decimal(order["qty"])
        if qty <= 0:
            return
        side = cast(Literal["buy", "sell"], order["side"])
        limit = order.get("limit_price")
        request = OrderRequest(
            client_id=self.client.client_order_id(order_id),
            symbol=order["symbol"],
            side=side,
            qty=qty,
            reduce_only=bool(order["reduce_only"]),
            limit_price=Decimal(limit) if limit is not None else None,
            reference_price=reference_price(order),
        )
        self._remember(request, order_id)
        if delivery.count > 1:
            found = await self.client.query(request.symbol, request.client_id)
            if found is not None:
                log.info("order_found_at_venue", order_id=order_id, state=found.state.value)
                await self._report(order_id, qty, found)
                return
        deadline = valid_until(order)
        limited: str | None = None
        # A first delivery, read moments ago, leaves unchecked within the fence window: the
        # disconnection fences the stream and removes its group in one step (no delivery after
        # it), then waits out the window before it answers. Anything else asks Redis first.
        fence_by: float | None = None
        if delivery.count == 1 and delivery.read_at > 0:
            fence_by = delivery.read_at + FENCE_WINDOW_S
        while True:
            if self._hold is not None:
                # Lapsed: this instance's lease round is late. Renewed, the order goes on;
                # lost, the executor is stopped, and the account's next owner has the order.
                await self._hold.wait()
            left = (deadline - datetime.now(UTC)).total_seconds()
            if left <= 0:
                reason = f"rate_limited: {limited}" if limited else None
                await self.reports.report(self.follower_id, order_id, "expired", reason=reason)
                return
            if fence_by is None or time.monotonic() >= fence_by:
                # An answer of Redis is as good as a read for the window: a fence set after
                # it is answered past the window, so a wait inside the client that outlasts
                # it asks again rather than carrying the order past a disconnection.
                asked = time.monotonic()
                await self._check_fence()
                fence_by = asked + FENCE_WINDOW_S
            token = SEND_BY.set(deadline)
            fence_token = FENCE_BY.set(fence_by)
            held_token = HELD.set(self._held)
            # Whatever happens to this attempt, a next one asks Redis.
            fence_by = None
            try:
                result = await self.client.place(request)
            except FenceUnchecked:
                continue  # nothing was sent: ask, then send
            except LeaseLapsed:
                log.warning("order_held_back", order_id=order_id, reason="lease lapsed")
                continue  # nothing was sent: wait for the lease, or be stopped
            except Expired as exc:
                log.info("order_expired_unsent", order_id=order_id, error=str(exc))
                reason = f"rate_limited: {limited}" if limited else "expired before it was sent"
                await self.reports.report(self.follower_id, order_id, "expired", reason=reason)
                return
            except RateLimited as exc:
                limited = str(exc)[:150]
                log.warning(
                    "order_rate_limited", order_id=order_id, retry_after_s=exc.retry_after_s
                )
                await asyncio.sleep(min(exc.retry_after_s, left))
                continue
            except OutcomeUnknown as exc:
                log.warning("order_outcome_unknown", order_id=order_id, error=str(exc))
                # Raises when the venue cannot be asked: the entry is delivered again later.
                found = await self.client.query(request.symbol, request.client_id)
                if found is None:
                    continue  # it never arrived: sending again places it once
                result = found
            finally:
                SEND_BY.reset(token)
                FENCE_BY.reset(fence_token)
                HELD.reset(held_token)
            log.info("order_placed", order_id=order_id, state=result.state.value)
            await self._report(order_id, qty, result)
            return

    def _held(self) -> bool:
        return self._hold is None or self._hold.valid

    async def _check_fence(self) -> None:
        """The account is being disconnected (DELETE): place nothing more. The entry stays
        unacknowledged; the DELETE reports it expired. Asked before an order that may not
        leave unchecked (``FENCE_WINDOW_S``)."""
        if await self._fences.fenced(self.follower_id):
            raise Disconnected(f"follower {self.follower_id}: account disconnected")

    def _remember(self, request: OrderRequest, order_id: str) -> None:
        self._placed[request.client_id] = _Placed(order_id, request.symbol, request.qty, True)
        while len(self._placed) > RECENT_ORDERS:
            self._placed.popitem(last=False)

    async def _report(self, order_id: str, qty: Decimal, result: VenueOrder) -> None:
        status = _REPORTED[result.state]
        filled = min(result.filled_qty, qty)
        if status == "filled" and filled < qty:
            status = "partially_filled"
        reason: str | None = None
        if result.state is OrderState.REJECTED:
            if result.reason in _RULES and self._on_rules_refused is not None:
                self._on_rules_refused(self.client.venue)
            reason = (result.reason.value if result.reason else "venue_error") + (
                f": {result.raw_code} {result.raw_message or ''}".rstrip()
                if result.raw_code
                else ""
            )
            reason = _UNPRINTABLE.sub(" ", reason)[:200]
        elif result.state in (OrderState.CANCELED, OrderState.EXPIRED):
            reason = f"venue: {result.state.value}"
        placed = self._placed.get(result.client_id)
        if placed is not None:
            placed.open = result.state in (OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED)
            if placed.reported == (status, filled):
                return
        await self.reports.report(
            self.follower_id,
            order_id,
            status,
            filled_qty=filled,
            avg_price=result.avg_price if filled > 0 else None,
            reason=reason,
        )
        # Marked only once written: a write that failed leaves it to the next answer, push or
        # poll. The answer and the push arriving at once may both write it; the report
        # service takes the same status twice as once.
        if placed is not None:
            placed.reported = (status, filled)
        if filled > 0 or status in ("rejected", "expired"):
            # The position moved, or an order ended short: read it (and check the drift) now.
            self._refresh.set()

    # -- the account ------------------------------------------------------------------------

    async def _account_loop(self, backoff: Backoff) -> None:
        while True:
            try:
                snapshot = await self.client.account()
            except AccountError as exc:
                await self._set_status("error", str(exc))
                raise
            if not snapshot.one_way:
                self._ready.clear()
                await self._set_status("error", HEDGE_MODE)
            else:
                await self._record(snapshot.equity, snapshot.positions, snapshot.at, full=True)
                self._ready.set()
            await self._poll_open_orders()
            backoff.reset()
            self._refresh.clear()
            try:
                async with asyncio.timeout(self._params.equity_interval_s):
                    await self._refresh.wait()
            except TimeoutError:
                continue
            await self._until_fills_pause()
            # ...and not in the way of a fan-out's orders (the same process places them).
            await self._orders.quiet(REFRESH_AFTER_FILL_S, AFTER_ORDERS_MOST_S)

    async def _until_fills_pause(self) -> None:
        """Return once no fill was reported for REFRESH_QUIET_S, or REFRESH_AFTER_FILL_MAX_S
        after the first one."""
        loop = asyncio.get_running_loop()
        latest = loop.time() + REFRESH_AFTER_FILL_MAX_S
        while (left := latest - loop.time()) > 0:
            self._refresh.clear()
            try:
                async with asyncio.timeout(min(REFRESH_QUIET_S, left)):
                    await self._refresh.wait()
            except TimeoutError:
                return

    async def _poll_open_orders(self) -> None:
        """Orders accepted but not ended: ask the venue, in case the stream missed their end."""
        for client_id, placed in list(self._placed.items()):
            if placed.open:
                found = await self.client.query(placed.symbol, client_id)
                if found is None:
                    placed.open = False  # never reached the venue: its entry is sent again
                elif found.state is not OrderState.ACCEPTED:
                    await self._report(placed.order_id, placed.qty, found)

    async def _stream(self, backoff: Backoff) -> None:
        await self._ready.wait()
        async for event in self.client.events():
            await self._on_event(event)
            backoff.reset()

    async def _on_event(self, event: AccountEvent) -> None:
        if event.order is not None:
            placed = self._placed.get(event.order.client_id)
            if placed is not None:
                await self._report(placed.order_id, placed.qty, event.order)
        if event.positions or event.equity is not None:
            self._pushed.update(event.positions)
            if event.equity is not None:
                self._pushed_equity = event.equity
            self._pushed_at = event.at or datetime.now(UTC)
            self._push_due.set()

    async def _write_pushes(self, backoff: Backoff) -> None:
        """Store the pushed equity and positions, the latest of each at a time: pushes that
        come while a write waits or runs are stored together by the next one, rather than a
        transaction per push (a venue pushes the account's position with every fill)."""
        while True:
            await self._push_due.wait()
            await self._orders.quiet(REFRESH_AFTER_FILL_S, AFTER_ORDERS_MOST_S)
            self._push_due.clear()
            positions, self._pushed = self._pushed, {}
            equity, self._pushed_equity = self._pushed_equity, None
            try:
                await self._record(equity, positions, self._pushed_at, full=False)
            except Exception:
                # Kept for the next write, behind anything pushed since.
                self._pushed = {**positions, **self._pushed}
                if self._pushed_equity is None:
                    self._pushed_equity = equity
                self._push_due.set()
                raise
            backoff.reset()

    async def _record(
        self,
        equity: Decimal | None,
        positions: dict[str, Decimal],
        at: datetime,
        *,
        full: bool,
    ) -> None:
        async with self._db_slots, UnitOfWork(self._sessionmaker) as uow:
            repo = FollowerAccountRepository(uow.session)
            if equity is not None and equity > 0:
                await self._pipeline.record_equity(uow, equity, at, follower_id=self.follower_id)
                await repo.record_equity(self.follower_id, equity, at)
            if full or positions:
                await repo.record_positions(self.follower_id, positions, at, full=full)
            await uow.commit()
        if equity is not None:
            self.status, self.last_error = "ready", None
        if (full or positions) and self._on_positions is not None:
            await self._on_positions(self.follower_id)

    async def _set_status(self, status: str, error: str | None) -> None:
        if (status, error) == (self.status, self.last_error):
            return
        self.status, self.last_error = status, error
        log.warning("account_status", follower_id=str(self.follower_id), status=status, error=error)
        async with self._db_slots, UnitOfWork(self._sessionmaker) as uow:
            await FollowerAccountRepository(uow.session).set_status(
                self.follower_id, self._me, status, error[:300] if error else None
            )
            await uow.commit()
