"""A follower's drift, checked after each reading of its venue account (app.domain.drift).

The executor holding a follower's account calls :meth:`DriftReconciler.check` after every
reading it stores: on its interval, after the reports of fills (the account is read again once
they pause, or a second after the first) and after each position push. Per follower symbol,
where no order of the follower is in flight, the reading is newer than its last report, and a
difference from the tracked position was seen by two readings in a row (one taken while an
order filled may not show it):

1. the venue's position is taken as the truth: into the tracked position (``alert``,
   ``resync``), so the next fill is sized from it, or into what the follower holds on its
   own (``adopt``), which sizing never trades;
2. what is left against the target is measured and stored (the positions view shows it),
   set in ``copytrade_follower_drift`` and, when its flag changes, sent on the follower feed;
3. under ``resync``, a drift that counts takes the symbol's resync slot (durable: a row in
   Postgres, so at most one per ``drift_min_interval_s`` whichever instance holds the
   account) and, after the commit, each subscription in the symbol is brought to its target
   by a ``sync`` event through the sizing engine and the outbox, like any fill.

Where several subscriptions trade one symbol, the oldest one's drift settings apply to it; the
venue's correction is shared so that no tracked position is pushed past flat while another
can take it (``drift.split``).
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.repositories.drift import DriftRepository, InFlight, SubscriptionRow
from app.db.repositories.positions import PositionRepository
from app.db.session import UnitOfWork
from app.dispatch.keys import feed_channel
from app.domain import drift
from app.domain.decimals import fmt
from app.domain.model import EquityReading, Side
from app.domain.plan_model import DriftMode, SizingMode, SizingSettings
from app.metrics import FOLLOWER_DRIFT
from app.pipeline import Pipeline
from app.redisconn import AnyRedis
from app.sizing.books import settings_from_row
from app.sizing.follower_drift import SymbolTarget

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class _Entry:
    sub: SubscriptionRow
    target: SymbolTarget


@dataclass(frozen=True, slots=True)
class _Resync:
    entry: _Entry
    tracked: Decimal  # after the venue's correction
    slot: datetime  # the claimed resync time: one event id per slot


class DriftReconciler:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        pipeline: Pipeline,
        redis: AnyRedis,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._pipeline = pipeline
        self._redis = redis
        self._locks: defaultdict[UUID, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._gauged: defaultdict[UUID, set[str]] = defaultdict(set)  # symbols with a gauge
        # (follower, symbol) -> (actual, tracked, adopted) of a difference seen once.
        self._suspects: dict[tuple[UUID, str], tuple[Decimal, Decimal, Decimal]] = {}

    async def check(self, follower_id: UUID) -> None:
        """Compare the follower's venue positions with its targets and act (module doc).
        Errors are logged: the next reading checks again."""
        async with self._locks[follower_id]:
            try:
                await self._check(follower_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("drift_check_failed", follower_id=str(follower_id), error=repr(exc))

    def forget(self, follower_id: UUID) -> None:
        """The account's executor stopped here: its gauges belong to whoever runs it next."""
        self._locks.pop(follower_id, None)
        for key in [key for key in self._suspects if key[0] == follower_id]:
            del self._suspects[key]
        for symbol in self._gauged.pop(follower_id, set()):
            FOLLOWER_DRIFT.remove(str(follower_id), symbol)

    async def _check(self, follower_id: UUID) -> None:
        engine = self._pipeline.sizing
        async with self._sessionmaker() as session:
            repo = DriftRepository(session)
            positions_at, venue = await repo.venue(follower_id)
            subs = await repo.subscriptions(follower_id)
        if positions_at is None or not subs:
            return
        by_symbol: dict[str, list[_Entry]] = defaultdict(list)
        for sub in subs:
            for target in await engine.symbol_targets(sub.leader_id, sub.id):
                by_symbol[target.symbol].append(_Entry(sub, target))
        equity = self._pipeline.equity.follower(follower_id)
        resyncs: list[_Resync] = []
        notices: list[str] = []
        corrected: set[UUID] = set()
        async with UnitOfWork(self._sessionmaker) as uow:
            repo = DriftRepository(uow.session)
            flights = await repo.in_flight(follower_id)
            states = await repo.states(follower_id)
            paused = await repo.paused_positions(follower_id)
            for symbol, entries in sorted(by_symbol.items()):
                actual, read_at = venue.get(symbol, (Decimal(0), positions_at))
                key = (follower_id, symbol)
                if not _settled(flights.get(symbol), read_at):
                    self._suspects.pop(key, None)
                    continue
                primary = entries[0]
                settings = _settings(primary.sub)
                state = states.get(symbol)
                adopted = state.adopted if state is not None else Decimal(0)
                # A paused subscription keeps its position, outside the books' entries: held
                # aside like the adopted part, never folded into a live subscription.
                aside = paused.get(symbol, Decimal(0))
                tracked = sum((e.target.tracked for e in entries), Decimal(0))
                correction = drift.reconcile(settings.drift, actual, tracked, adopted + aside)
                seen = (actual, tracked, adopted + aside)
                if correction != drift.NO_CORRECTION and self._suspects.get(key) != seen:
                    # A reading taken while an order filled may miss it: act on a difference
                    # only when the next reading shows it again, with nothing moved between.
                    self._suspects[key] = seen
                    continue
                self._suspects.pop(key, None)
                moves = drift.split(correction.tracked, [e.target.tracked for e in entries])
                for entry, move in zip(entries, moves, strict=True):
                    if not move:
                        continue
                    await PositionRepository(uow.session).correct_subscription(
                        entry.sub.id, symbol, move, entry.sub.leader_id
                    )
                    corrected.add(entry.sub.leader_id)
                    log.info(
                        "tracked_position_corrected",
                        follower_id=str(follower_id),
                        subscription_id=str(entry.sub.id),
                        symbol=symbol,
                        delta=fmt(move),
                    )
                adopted += correction.adopted
                measured = _assess(entries, actual, adopted + aside, settings, equity)
                flagged = measured is not None and measured.counts
                await repo.record(
                    follower_id,
                    symbol,
                    adopted,
                    measured.drift if measured else None,
                    measured.fraction if measured else None,
                    flagged,
                )
                self._gauged[follower_id].add(symbol)
                FOLLOWER_DRIFT.labels(str(follower_id), symbol).set(
                    float(measured.fraction) if measured and flagged else 0
                )
                if flagged != (state is not None and state.flagged):
                    notices.append(_notice(symbol, settings.drift, measured, flagged, adopted))
                if measured is None or not flagged or settings.drift is not DriftMode.RESYNC:
                    continue
                slot = await repo.claim_resync(follower_id, symbol, settings.drift_min_interval_s)
                if slot is None:
                    continue
                for entry, move in zip(entries, moves, strict=True):
                    resyncs.append(_Resync(entry, entry.target.tracked + move, slot))
            await uow.commit()
        for leader_id in corrected:
            engine.invalidate(leader_id)
        for notice in notices:
            await self._redis.publish(feed_channel(follower_id), notice)
        for resync in resyncs:
            await self._resync(follower_id, resync)

    async def _resync(self, follower_id: UUID, resync: _Resync) -> None:
        entry, target = resync.entry, resync.entry.target
        if target.target is None:
            return
        want = target.target - resync.tracked
        if not want:
            return
        slot_ms = int(resync.slot.timestamp() * 1000)
        event_id = f"{drift.FOLLOWER_RESYNC}:{entry.sub.id}:{target.symbol}:{slot_ms}"
        side = Side.BUY if want > 0 else Side.SELL
        outcome = await self._pipeline.sizing.resync_follower(
            entry.sub.leader_id,
            entry.sub.id,
            target.leader_symbol,
            (event_id, side, abs(want)),
            drift.resync_plan,
        )
        if outcome is None or outcome.duplicate:
            return
        log.warning(
            "follower_resync",
            follower_id=str(follower_id),
            subscription_id=str(entry.sub.id),
            symbol=target.symbol,
            fill_id=event_id,
            orders=sum(not order.skipped for order in outcome.orders),
            reason=drift.FOLLOWER_RESYNC,
        )
        await self._pipeline.dispatch(outcome.orders, outcome.fill_pks)


def _settled(flight: InFlight | None, read_at: datetime) -> bool:
    """No order in flight, and the venue was read after the symbol's last report: otherwise
    the reading may not show an order that sizing already counts."""
    if flight is None:
        return True
    return not flight.open and (flight.reported_at is None or read_at > flight.reported_at)


def _settings(sub: SubscriptionRow) -> SizingSettings:
    return settings_from_row(sub.multiplier, sub.status, sub.sizing)


def _assess(
    entries: list[_Entry],
    actual: Decimal,
    adopted: Decimal,
    settings: SizingSettings,
    equity: EquityReading | None,
) -> drift.Assessment | None:
    """The drift against the sum of the subscriptions' targets; None while a target, a price
    or the follower's equity is unknown, or where a subscription sizes per fill: only the
    target mode has a target to hold (the others' positions are whatever their fills made)."""
    if any(_settings(e.sub).mode is not SizingMode.TARGET for e in entries):
        return None
    targets = [e.target.target for e in entries]
    price = next((e.target.price for e in entries if e.target.price), None)
    if price is None or equity is None or equity.equity <= 0 or None in targets:
        return None
    total = sum((t for t in targets if t is not None), Decimal(0))
    step = max(e.target.qty_step for e in entries)
    return drift.assess(
        actual, total, adopted, step, price, equity.equity, settings.drift_tolerance
    )


def _notice(
    symbol: str,
    mode: DriftMode,
    measured: drift.Assessment | None,
    flagged: bool,
    adopted: Decimal,
) -> str:
    """The follower feed's message when a symbol starts or stops drifting."""
    return json.dumps(
        {
            "type": "drift",
            "symbol": symbol,
            "flagged": flagged,
            "mode": mode.value,
            "drift": fmt(measured.drift) if measured else None,
            "fraction": fmt(measured.fraction) if measured else None,
            "adopted": fmt(adopted),
            "at": datetime.now(UTC).isoformat(),
        },
        separators=(",", ":"),  # '{"type":' is how the feed tells a message from an order
    )
