"""Which follower accounts this instance trades: one executor per account, leased in Postgres.

The lease rounds are ``leases.py``'s, as for the leader listeners (``leaders.py``). When
another instance takes a dead one's accounts, their unacknowledged orders are delivered to it
again (it asks the venue before resending any).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID

import structlog
from redis.exceptions import ResponseError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.repositories.follower_accounts import (
    ACCOUNT_LEASES,
    EXEC_PREFIX,
    AccountSpec,
    FollowerAccountRepository,
)
from app.db.session import UnitOfWork
from app.dispatch.keys import exec_fence, order_stream
from app.executors.protocol.consumer import ConsumerConfig, OrderReads, ReportWriter
from app.pipeline import Pipeline
from app.redisconn import AnyRedis
from app.security.crypto import CredentialCipher
from app.venues.drift import DriftReconciler
from app.venues.executor import FENCE_WINDOW_S, GROUP, AccountExecutor, ExecutorParams
from app.venues.fences import FenceChecks
from app.venues.leases import Held, LeaseKeeper, LeaseParams
from app.venues.registry import AccountContext, factory

if TYPE_CHECKING:
    from app.settings import Settings

log = structlog.get_logger(__name__)
# Stream entries read per call while expiring a disconnected account's queue.
EXPIRE_PAGE = 500
# Pending entries listed when an account is disconnected (READ_AHEAD per consumer is held).
PENDING_MAX = 100_000
DB_SLOTS = 3
# Entries read ahead per account: few, since a crash leaves each of them delivered once more
# (their delivery count climbing towards the dead-letter stream).
READ_AHEAD = 10
# Deliveries before an order is dead-lettered: generous, each is a crash or a venue outage.
MAX_DELIVERIES = 50
# How long the execute role's reads block: shorter than the fence window, so that an order
# read by a read that waited for it may still leave without a look at the fence.
READ_BLOCK_MS = 1000
# A disconnection that finds orders in an executor's hands waits this long before it reports
# them expired and answers: past the fence window, none of them can leave unchecked any more.
DISCONNECT_WAIT_S = FENCE_WINDOW_S + 0.5
# KEYS: a follower's order stream, its fence key; ARGV: the group, how many pending entries
# to list. Fences the stream off and removes its group in one step, so that nothing is
# delivered after the fence; returns the group's last delivered id and the ids of the entries
# delivered but not acknowledged (in an executor's hands), or false: no stream or no group.
_FENCE_LUA = """
redis.call('SET', KEYS[2], '1')
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local last = false
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local name, delivered
  for i = 1, #group, 2 do
    if group[i] == 'name' then name = group[i + 1] end
    if group[i] == 'last-delivered-id' then delivered = group[i + 1] end
  end
  if name == ARGV[1] then last = delivered end
end
if not last then return false end
local held = {}
for _, entry in ipairs(redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', ARGV[2])) do
  held[#held + 1] = entry[1]
end
redis.call('XGROUP', 'DESTROY', KEYS[1], ARGV[1])
return {last, held}
"""


@dataclass(frozen=True, slots=True)
class AccountsParams:
    leases: LeaseParams
    rest_timeout_s: float
    executor: ExecutorParams
    # Accounts' order streams named by one blocking read.
    read_shard: int = 1000

    @classmethod
    def from_settings(cls, settings: Settings) -> AccountsParams:
        return cls(
            leases=LeaseParams.from_settings(settings),
            rest_timeout_s=settings.venue_rest_timeout_s,
            executor=ExecutorParams(
                equity_interval_s=settings.account_equity_interval_s,
                claim_idle_ms=settings.exec_claim_idle_ms,
                retry_initial_s=settings.reconnect_initial_s,
                retry_max_s=settings.reconnect_max_s,
            ),
            read_shard=settings.exec_read_shard,
        )


@dataclass(frozen=True, slots=True)
class _Plan:
    running: set[UUID]
    start: list[AccountSpec]


class AccountManager(LeaseKeeper[AccountExecutor, _Plan]):
    worker_name: ClassVar[str] = "executor"

    def __init__(
        self,
        redis: AnyRedis,
        sessionmaker: async_sessionmaker[AsyncSession],
        pipeline: Pipeline,
        params: AccountsParams,
        cipher: CredentialCipher | None,
        instance: str,
        on_rules_refused: Callable[[str], None] | None = None,
        drift: DriftReconciler | None = None,
    ) -> None:
        super().__init__(
            ACCOUNT_LEASES, sessionmaker, params.leases, EXEC_PREFIX + instance, cipher
        )
        self._redis = redis
        self._drift = drift
        self._pipeline = pipeline
        self._params = params
        self._on_rules_refused = on_rules_refused
        # Executors' account writes at once: a few, so that a thousand accounts read at the
        # same moment leave the pool to the fills and the lease rounds.
        self._db_slots = asyncio.Semaphore(DB_SLOTS)
        self._fences = FenceChecks(redis)
        # The orders of every account traded here, read by a few shared blocking reads.
        self.orders = OrderReads(
            redis,
            ConsumerConfig(
                group=GROUP,
                consumer=self.me,
                claim_idle_ms=params.executor.claim_idle_ms,
                max_deliveries=MAX_DELIVERIES,
                batch=READ_AHEAD,
                block_ms=READ_BLOCK_MS,
                start_id="$",
            ),
            fence=exec_fence,
            shard_size=params.read_shard,
            name="executor_orders",
        )

    @property
    def executors(self) -> dict[UUID, AccountExecutor]:
        return self.running

    def start(self) -> None:
        self.orders.start()
        super().start()

    async def stop_all(self) -> None:
        # The shared reads stop before the leases are handed over: an entry read for this
        # instance after that would wait out the claim idle time at the account's next holder.
        await self._loop.stop()
        for follower_id in list(self.running):
            await self._stop(follower_id)
        await self.orders.stop()
        await super().stop_all()

    async def stop_here(self, follower_id: UUID) -> None:
        """Stop the account's executor if this instance runs it (a DELETE answered here)."""
        async with self._lock:
            await self._stop(follower_id)

    async def _wanted(self, session: AsyncSession) -> tuple[int, None]:
        # Every account row is wanted: a disconnected account's row is gone.
        return await FollowerAccountRepository(session).count(), None

    async def _plan(self, session: AsyncSession, held: Held) -> _Plan:
        # Running on and renewed: kept as is. Any other executor stops, even when its
        # account was claimed again: it was reconnected (PUT frees the lease) with new keys.
        running = held.keep & held.renewed & self.running.keys()
        specs = await FollowerAccountRepository(session).specs(held.keep - running)
        return _Plan(running, list(specs.values()))

    async def _apply(self, plan: _Plan) -> None:
        for follower_id in list(self.running):
            if follower_id not in plan.running:
                await self._stop(follower_id)
        for spec in plan.start:
            await self._start(spec)

    async def _start(self, spec: AccountSpec) -> None:
        try:
            client = factory(spec.kind)(
                AccountContext(
                    spec.follower_id,
                    spec.config,
                    self._credentials(spec.secret),
                    self._params.rest_timeout_s,
                )
            )
        except Exception as exc:
            log.error("executor_not_built", follower_id=str(spec.follower_id), error=str(exc))
            async with UnitOfWork(self._sessionmaker) as uow:
                await FollowerAccountRepository(uow.session).set_status(
                    spec.follower_id, self.me, "error", str(exc)[:300]
                )
                await uow.commit()
            return
        executor = AccountExecutor(
            spec.follower_id,
            client,
            self._redis,
            self._sessionmaker,
            self._pipeline,
            self._params.executor,
            self.me,
            self.orders,
            self._db_slots,
            self._on_rules_refused,
            self._drift.check if self._drift is not None else None,
            self._fences,
            self._hold(spec.follower_id),
        )
        self.running[spec.follower_id] = executor
        executor.start()
        log.info("executor_started", follower_id=str(spec.follower_id), kind=spec.kind)

    async def _stop(self, key: UUID) -> None:
        await super()._stop(key)
        if self._drift is not None:
            self._drift.forget(key)


async def fence(redis: AnyRedis, follower_id: UUID) -> None:
    """An account is being disconnected: its executor, wherever it runs, sends nothing more."""
    await redis.set(exec_fence(follower_id), "1")


async def open_fence(redis: AnyRedis, follower_id: UUID) -> None:
    """An account (re)connected: its executor may place orders, every order enqueued from
    now on (the group starts here; a reconnection keeps its group and what is pending)."""
    try:
        await redis.xgroup_create(order_stream(follower_id), GROUP, id="$", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
    await redis.delete(exec_fence(follower_id))


async def disconnect(redis: AnyRedis, follower_id: UUID) -> int:
    """After an account's DELETE: fence its executor off and remove the ``copytrade-exec``
    group (so the stream can be trimmed) in one step, then report every order still queued
    for it ``expired``. Orders an executor had in hand are reported once the fence window
    has passed: by then each has left or never will. Return how many orders were expired."""
    stream = order_stream(follower_id)
    found: Any = await redis.eval(
        _FENCE_LUA, 2, stream, exec_fence(follower_id), GROUP, str(PENDING_MAX)
    )
    if not found:
        return 0
    last, held = _text(found[0]), [_text(entry_id) for entry_id in found[1]]
    queued: list[str] = []
    start = "(" + last
    page: Any
    while page := await redis.xrange(stream, min=start, count=EXPIRE_PAGE):
        queued += [_text(entry_id) for entry_id, _ in page]
        start = "(" + _text(page[-1][0])
    expired = await _expire(redis, follower_id, stream, queued)
    if held:
        await asyncio.sleep(DISCONNECT_WAIT_S)
        expired += await _expire(redis, follower_id, stream, held)
    return expired


async def _expire(redis: AnyRedis, follower_id: UUID, stream: str, ids: list[str]) -> int:
    reports = ReportWriter(redis)
    expired = 0
    for entry_id in ids:
        entries: Any = await redis.xrange(stream, min=entry_id, max=entry_id)
        for _, fields in entries:
            raw = fields.get(b"order") or fields.get("order")
            if raw:
                order = json.loads(raw)
                await reports.report(
                    follower_id, order["order_id"], "expired", reason="account_disconnected"
                )
                expired += 1
    return expired


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
