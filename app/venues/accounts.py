"""Which follower accounts this instance trades: one executor per account, leased in Postgres.

The same lease rounds as the leader listeners (``app.ingest.manager``): every heartbeat,
renew, release what is gone or beyond a fair share, claim expired or unowned leases up to
the share. An instance that dies stops renewing; after ``lease_ttl_s`` another takes its
accounts, and their unacknowledged orders are delivered to it again (it asks the venue
before resending any). An instance that cannot reach Postgres stops its executors before
its leases can expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import structlog
from redis.exceptions import ResponseError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.repositories.follower_accounts import (
    EXEC_PREFIX,
    AccountSpec,
    FollowerAccountRepository,
)
from app.db.session import UnitOfWork
from app.dispatch.keys import exec_fence, order_stream
from app.executors.protocol.consumer import ConsumerConfig, OrderReads, ReportWriter
from app.loops import Backoff, SupervisedTask
from app.pipeline import Pipeline
from app.redisconn import AnyRedis
from app.security.crypto import Credential, CredentialCipher
from app.venues.executor import GROUP, AccountExecutor, ExecutorParams
from app.venues.registry import AccountContext, factory

log = structlog.get_logger(__name__)
# Stream entries read per call while expiring a disconnected account's queue.
EXPIRE_PAGE = 500
DB_SLOTS = 3
# Entries read ahead per account: few, since a crash leaves each of them delivered once more
# (their delivery count climbing towards the dead-letter stream).
READ_AHEAD = 10
# Deliveries before an order is dead-lettered: generous, each is a crash or a venue outage.
MAX_DELIVERIES = 50


@dataclass(frozen=True, slots=True)
class AccountsParams:
    lease_ttl_s: float
    lease_heartbeat_s: float
    rest_timeout_s: float
    executor: ExecutorParams
    # Accounts' order streams named by one blocking read.
    read_shard: int = 1000


class AccountManager:
    def __init__(
        self,
        redis: AnyRedis,
        sessionmaker: async_sessionmaker[AsyncSession],
        pipeline: Pipeline,
        params: AccountsParams,
        cipher: CredentialCipher | None,
        instance: str,
        on_rules_refused: Callable[[str], None] | None = None,
    ) -> None:
        self._redis = redis
        self._sessionmaker = sessionmaker
        self._pipeline = pipeline
        self._params = params
        self._cipher = cipher
        self._on_rules_refused = on_rules_refused
        self.me = EXEC_PREFIX + instance
        self.executors: dict[UUID, AccountExecutor] = {}
        self._started = False
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._valid_until = 0.0
        # Executors' account writes at once: a few, so that a thousand accounts read at the
        # same moment leave the pool to the fills and the lease rounds.
        self._db_slots = asyncio.Semaphore(DB_SLOTS)
        # The orders of every account traded here, read by a few shared blocking reads.
        self.orders = OrderReads(
            redis,
            ConsumerConfig(
                group=GROUP,
                consumer=self.me,
                claim_idle_ms=params.executor.claim_idle_ms,
                max_deliveries=MAX_DELIVERIES,
                batch=READ_AHEAD,
                start_id="$",
            ),
            fence=exec_fence,
            shard_size=params.read_shard,
            name="executor_orders",
        )
        self._loop = SupervisedTask(
            "account_leases",
            self._run,
            Backoff(params.executor.retry_initial_s, params.lease_heartbeat_s),
        )

    def start(self) -> None:
        self._started = True
        self.orders.start()
        self._loop.start()

    @property
    def healthy(self) -> bool:
        return (self._loop.alive or not self._started) and all(
            e.alive for e in self.executors.values()
        )

    async def refresh(self) -> None:
        """Reconcile now (an account was connected or disconnected here)."""
        if not self._started:
            return
        try:
            async with self._lock:
                await self._reconcile()
        except Exception as exc:
            log.warning("accounts_refresh_deferred", error=repr(exc))
            self._wake.set()

    async def stop_all(self) -> None:
        await self._loop.stop()
        for follower_id in list(self.executors):
            await self._stop(follower_id)
        await self.orders.stop()
        if not self._started:
            return
        try:
            async with UnitOfWork(self._sessionmaker) as uow:
                await FollowerAccountRepository(uow.session).leave(self.me)
                await uow.commit()
        except Exception as exc:
            log.warning("account_leases_not_released", error=repr(exc))

    async def stop_here(self, follower_id: UUID) -> None:
        """Stop the account's executor if this instance runs it (a DELETE answered here)."""
        async with self._lock:
            await self._stop(follower_id)

    async def _run(self, backoff: Backoff) -> None:
        while True:
            try:
                async with asyncio.timeout(self._params.lease_ttl_s / 2):
                    async with self._lock:
                        await self._reconcile()
            except Exception:
                if time.monotonic() > self._valid_until and self.executors:
                    log.warning("account_leases_lost", accounts=len(self.executors))
                    for follower_id in list(self.executors):
                        await self._stop(follower_id)
                raise
            backoff.reset()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._params.lease_heartbeat_s):
                    await self._wake.wait()
            self._wake.clear()

    async def _reconcile(self) -> None:
        ttl = self._params.lease_ttl_s
        started = time.monotonic()
        async with UnitOfWork(self._sessionmaker) as uow:
            repo = FollowerAccountRepository(uow.session)
            live = await repo.heartbeat(self.me, ttl)
            total = await repo.count()
            renewed = await repo.renew(self.me, ttl)
            keep = set(renewed)
            share = math.ceil(total / live)
            surplus = len(keep) - share
            if surplus > 0:
                extra = sorted(keep, key=str)[:surplus]
                keep -= set(extra)
                await repo.release(self.me, extra)
            keep |= await repo.claim(self.me, ttl, share - len(keep))
            # Running on and renewed: kept as is. Any other executor stops, even when its
            # account was claimed again: it was reconnected (PUT frees the lease) with new keys.
            running = keep & renewed & self.executors.keys()
            specs = await repo.specs(keep - running)
            await uow.commit()
        self._valid_until = started + ttl * 0.8
        for follower_id in list(self.executors):
            if follower_id not in running:
                await self._stop(follower_id)
        for spec in specs.values():
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
        )
        self.executors[spec.follower_id] = executor
        executor.start()
        log.info("executor_started", follower_id=str(spec.follower_id), kind=spec.kind)

    async def _stop(self, follower_id: UUID) -> None:
        executor = self.executors.pop(follower_id, None)
        if executor is not None:
            await executor.stop()
            log.info("executor_stopped", follower_id=str(follower_id))

    def _credentials(self, secret: str) -> dict[str, Credential]:
        if self._cipher is None:
            raise ValueError("COPYTRADE_CREDENTIALS_KEY is not set: cannot read the credentials")
        values = json.loads(self._cipher.decrypt(secret).reveal())
        return {name: Credential(value) for name, value in values.items()}


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
    """After an account's DELETE: fence its executor off, report every order still queued
    for it ``expired``, and remove the ``copytrade-exec`` group so the stream can be trimmed.
    Return how many orders were expired."""
    await fence(redis, follower_id)
    stream = order_stream(follower_id)
    try:
        groups = await redis.xinfo_groups(stream)
    except ResponseError:
        return 0  # no stream at all
    group = next((g for g in groups if _text(g.get("name")) == GROUP), None)
    if group is None:
        return 0
    ids: list[Any] = [
        p["message_id"]
        for p in await redis.xpending_range(stream, GROUP, min="-", max="+", count=100_000)
    ]
    start = "(" + _text(group.get("last-delivered-id"))
    page: Any
    while page := await redis.xrange(stream, min=start, count=EXPIRE_PAGE):
        ids += [entry_id for entry_id, _ in page]
        start = "(" + _text(page[-1][0])
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
    await redis.xgroup_destroy(stream, GROUP)
    return expired


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
