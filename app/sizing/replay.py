"""Replay: re-run sizing over a leader's past fills as a dry run, writing nothing.

What a subscription would have done: the leader's trades from a time on, planned one by one by
the same pure planner the service uses (``app.domain.planner.plan``), against the follower's
current subscription settings or hypothetical ones. The simulation starts with the follower
flat and the leader at the position its earlier trades add up to, then moves both the way the
sizing engine moves its books: the leader by each fill, the follower as if every order filled
in full. Equity is the newest snapshot as of each fill's event time, or the current one when
there is none yet at that time. Lot rules are the instruments' current ones.

``replay`` is pure. ``load_inputs`` reads what it needs through a repository, in a read-only
transaction.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories.accounts import FollowerRepository, LeaderRepository
from app.db.repositories.follower_accounts import FollowerAccountRepository
from app.db.repositories.history import HistoryRepository
from app.db.repositories.instruments import VenueInstrumentRepository
from app.db.repositories.trading import SubscriptionRepository
from app.domain.decimals import fmt
from app.domain.instruments import VENUES, not_listed_plan
from app.domain.model import EquityReading, Fill
from app.domain.plan_model import InstrumentRules, Plan, PlanContext, SizingSettings
from app.domain.planner import plan
from app.domain.positions import signed_qty
from app.sizing.books import (
    LeaderBook,
    SubscriptionBook,
    default_rules,
    move_book,
    settings_from_row,
)
from app.sizing.venue_rules import VenueRules, follower_venue

ZERO = Decimal(0)
# Stands in for the subscription (and follower) of a hypothetical replay.
NO_ID = UUID(int=0)
# SizingSettings fields a replay may set by hand, on top of the subscription's (or defaults).
OVERRIDABLE = frozenset(
    {
        "mode",
        "multiplier",
        "notional",
        "max_order_notional",
        "max_position_notional",
        "max_leverage",
        "max_slippage",
    }
)


class ReplayError(ValueError):
    """A replay that cannot run as asked; the message names the option or the record."""


@dataclass(frozen=True, slots=True)
class EquityHistory:
    """One account's equity over time, or a fixed equity given by hand."""

    readings: tuple[EquityReading, ...] = ()  # oldest first
    fixed: Decimal | None = None

    def at(self, when: datetime) -> EquityReading | None:
        """Return the newest reading as of ``when``; the current one if none is that old."""
        if self.fixed is not None:
            return EquityReading(0, self.fixed, when)
        if not self.readings:
            return None
        index = bisect_right(self.readings, when, key=lambda reading: reading.as_of)
        return self.readings[index - 1] if index else self.readings[-1]


@dataclass(frozen=True, slots=True)
class ReplayInputs:
    leader_id: UUID
    fills: tuple[Fill, ...]  # in the order the service processed them
    leader_positions: Mapping[str, Decimal]  # signed, per leader symbol, before the first fill
    leader_equity: EquityHistory
    follower_equity: EquityHistory
    instruments: Mapping[str, InstrumentRules]  # per follower symbol
    settings: SizingSettings
    follower_id: UUID | None = None
    source: str = "hypothetical"  # where the settings come from, for the report
    # The follower's venue (symbols.venue), its preferred quote, the leader's venue and the
    # venues' listings: symbols mapped and sized as the engine does (app.sizing.venue_rules).
    venue: str | None = None
    quote: str | None = None
    leader_venue: str | None = None
    venue_rules: VenueRules | None = None


@dataclass(frozen=True, slots=True)
class ReplayedFill:
    fill: Fill
    plan: Plan


@dataclass(frozen=True, slots=True)
class ReplayResult:
    fills: tuple[ReplayedFill, ...]
    positions: Mapping[str, Decimal] = field(default_factory=dict)  # follower's, at the end
    settings: SizingSettings = field(default_factory=SizingSettings)  # status may have moved

    @property
    def orders(self) -> int:
        """How many orders would have been sent."""
        return sum(len(item.plan.legs) for item in self.fills)

    def skips(self) -> Counter[str]:
        """Why nothing (or only part) was sent, per reason."""
        return Counter(item.plan.skip_reason.value for item in self.fills if item.plan.skip_reason)


class Replayer:
    """Plans the fills of ``inputs`` one at a time, moving the simulation as it goes."""

    def __init__(self, inputs: ReplayInputs) -> None:
        self.inputs = inputs
        self.sub = SubscriptionBook(NO_ID, inputs.follower_id or NO_ID, inputs.settings)
        self.sub.venue, self.sub.quote = inputs.venue, inputs.quote
        self.book = LeaderBook(inputs.leader_id, [self.sub], dict(inputs.leader_positions))
        self.done: list[ReplayedFill] = []

    def step(self, fill: Fill) -> ReplayedFill:
        """Plan the next fill (in the inputs' order) and move both positions."""
        inputs, sub, book = self.inputs, self.sub, self.book
        symbol = sub.settings.symbol_map.get(fill.symbol, fill.symbol)
        rules = inputs.instruments.get(symbol) or default_rules(symbol)
        placed = None
        if sub.venue is not None and inputs.venue_rules is not None:
            placed = inputs.venue_rules.place(
                sub, fill.symbol, inputs.leader_venue, inputs.instruments
            )
            symbol, rules = placed or (fill.symbol, rules)
        leader_before = book.positions.get(fill.symbol, ZERO)
        before = sub.positions.get(symbol, ZERO)
        if sub.venue is not None and placed is None:
            result = not_listed_plan(fill, leader_before, before)
        else:
            result = plan(
                PlanContext(
                    fill=fill,
                    leader_position_before=leader_before,
                    leader_equity=inputs.leader_equity.at(fill.event_at),
                    follower_equity=inputs.follower_equity.at(fill.event_at),
                    now=fill.event_at,
                    follower_position_before=before,
                    follower_gross_exposure=book.gross_exposure(sub, symbol),
                    instrument=rules,
                    settings=sub.settings,
                )
            )
        # Move the simulation as the engine moves its book once a fill commits.
        delta = result.follower_position_after - before if result.legs else ZERO
        move_book(
            book,
            fill,
            signed_qty(fill.side, fill.qty),
            [(sub, symbol, delta, result.status_change)],
        )
        item = ReplayedFill(fill, result)
        self.done.append(item)
        return item

    def result(self) -> ReplayResult:
        """What the fills stepped so far add up to."""
        positions = {symbol: qty for symbol, qty in sorted(self.sub.positions.items()) if qty}
        return ReplayResult(tuple(self.done), positions, self.sub.settings)


def replay(inputs: ReplayInputs, on_fill: Callable[[], None] | None = None) -> ReplayResult:
    """Plan every fill of ``inputs`` in order and return what each would have produced.

    ``on_fill`` is called after each fill (a progress bar's advance).
    """
    replayer = Replayer(inputs)
    for fill in inputs.fills:
        replayer.step(fill)
        if on_fill is not None:
            on_fill()
    return replayer.result()


async def load_inputs(
    session: AsyncSession,
    leader_id: UUID,
    since: datetime,
    until: datetime | None = None,
    *,
    follower_id: UUID | None = None,
    overrides: Mapping[str, Any] | None = None,
    equity: Decimal | None = None,
) -> ReplayInputs:
    """Read what a replay needs, in a read-only transaction.

    The settings are the live subscription's of ``follower_id`` to the leader if it has one,
    else the defaults; ``overrides`` (fields of SizingSettings) replace single settings.
    ``equity`` replaces the follower's equity history with a fixed amount; it is required
    without a follower. Raises ReplayError for unknown accounts and impossible settings.
    """
    overrides = dict(overrides or {})
    unknown = set(overrides) - OVERRIDABLE
    if unknown:
        raise ReplayError(f"overrides: cannot set {', '.join(sorted(unknown))}")
    history = HistoryRepository(session)
    await history.read_only()
    leader = await LeaderRepository(session).get(leader_id)
    if leader is None:
        raise ReplayError(f"leader: {leader_id} not found")
    settings = SizingSettings()
    source = "hypothetical"
    venue: str | None = None
    quote: str | None = None
    if follower_id is not None:
        if await FollowerRepository(session).get(follower_id) is None:
            raise ReplayError(f"follower: {follower_id} not found")
        sub = await SubscriptionRepository(session).live_for_pair(follower_id, leader_id)
        if sub is not None:
            settings = settings_from_row(sub.multiplier, sub.status, sub.sizing)
            account = await FollowerAccountRepository(session).venues({follower_id})
            listed = VenueRules(await VenueInstrumentRepository(session).listed(VENUES))
            venue, quote = follower_venue(
                sub.sizing, account.get(follower_id), listed.catalogue.venues
            )
            source = f"subscription {sub.id} ({sub.status})"
    elif equity is None:
        raise ReplayError("equity: required for a hypothetical follower (no follower given)")
    if overrides:
        try:
            settings = replace(settings, **overrides)
        except ValueError as exc:
            raise ReplayError(str(exc)) from exc
        source += " with overrides"
    if equity is not None:
        follower_equity = EquityHistory(fixed=equity)
    else:
        follower_equity = EquityHistory(
            tuple(await history.equity_history(follower_id=follower_id))
        )
    rules = {
        row.symbol: InstrumentRules(
            row.symbol, row.qty_step, row.min_qty, row.min_notional, row.price_step
        )
        for row in await history.instruments()
    }
    return ReplayInputs(
        leader_id=leader_id,
        fills=tuple(await history.trade_fills(leader_id, since, until)),
        leader_positions=await history.leader_positions_at(leader_id, since),
        leader_equity=EquityHistory(tuple(await history.equity_history(leader_id=leader_id))),
        follower_equity=follower_equity,
        instruments=rules,
        settings=settings,
        follower_id=follower_id,
        source=source,
        venue=venue,
        quote=quote,
        leader_venue=leader.feed_kind if leader.feed_kind in VENUES else None,
        venue_rules=VenueRules(await VenueInstrumentRepository(session).listed(VENUES))
        if venue is not None
        else None,
    )


# --- The result as JSON documents: amounts as decimal strings. The API streams them (a line
# each) and the CLI prints them, so both say the same thing.


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else fmt(value)


def settings_document(settings: SizingSettings) -> dict[str, Any]:
    """The settings a replay used, without the unset ones."""
    document: dict[str, Any] = {}
    for key in (f.name for f in fields(settings)):
        value = getattr(settings, key)
        if isinstance(value, Decimal):
            value = fmt(value)
        elif isinstance(value, frozenset):
            value = sorted(value)
        elif key == "symbol_map":
            value = dict(value)
        if value not in (None, [], {}):
            document[key] = str(value) if key in ("mode", "status") else value
    return document


def header_document(inputs: ReplayInputs) -> dict[str, Any]:
    """Who was replayed with which settings, and how many fills follow."""
    return {
        "leader_id": str(inputs.leader_id),
        "follower_id": str(inputs.follower_id) if inputs.follower_id else None,
        "settings_source": inputs.source,
        "settings": settings_document(inputs.settings),
        "fill_count": len(inputs.fills),
    }


def fill_document(item: ReplayedFill) -> dict[str, Any]:
    """One leader fill and the orders it would have produced."""
    fill, plan = item.fill, item.plan
    return {
        "fill_id": fill.fill_id,
        "event_at": fill.event_at.isoformat(),
        "symbol": fill.symbol,
        "side": fill.side.value,
        "qty": fmt(fill.qty),
        "price": fmt(fill.price),
        "leader_position_after": fmt(plan.leader_position_after),
        "follower_symbol": plan.symbol,
        "orders": [
            {
                "side": leg.side.value,
                "qty": fmt(leg.qty),
                "type": leg.order_type.value,
                "reduce_only": leg.reduce_only,
                "limit_price": _dec(leg.limit_price),
                "time_in_force": leg.time_in_force,
            }
            for leg in plan.legs
        ],
        "skip_reason": plan.skip_reason.value if plan.skip_reason else None,
        "clamps": list(plan.clamps),
        "target": _dec(plan.target),
        "follower_position_after": fmt(plan.follower_position_after),
    }


def summary_document(result: ReplayResult) -> dict[str, Any]:
    """Totals: fills, orders, skips per reason, the follower's positions at the end."""
    return {
        "fills": len(result.fills),
        "orders": result.orders,
        "skipped": dict(sorted(result.skips().items())),
        "positions": {symbol: fmt(qty) for symbol, qty in result.positions.items()},
    }
