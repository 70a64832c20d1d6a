"""Target-mode sizing of many subscriptions at once, in whole lot steps, with numpy.

The Decimal planner (``app.domain.planner``) is the reference: for the subscriptions this
module covers (``covers``: target mode with at most a multiplier, no caps, no price band) it
returns the same plans, and ``tests/unit/test_vector_sizing.py`` checks that property. It is
fenced here because one fill fans out to thousands of followers and the planner costs several
microseconds each; ``python -m bench.engine_micro`` measures both.

Every per-subscription value is an integer: positions and minimums in lot steps, equities in
units of 1e-8, the multiplier over the step as a fraction. The target in steps is then the
exact fraction ``E * gn * n / (gd * dn)`` (``n / dn`` = leader position / leader equity), split
as ``Q + R / D`` with ``0 <= R < D``; every rounding the planner does is a comparison on
``(Q, R, D)``. A row whose values are not whole in those units (a position off its step, an
equity with more than 8 decimals) is left to the planner (``Sized.fallback``); the
conversions into these units are in ``app.domain.vector_units``.

Overflow guard: the products are bounded with Python ints before they are made; past int64
the same code runs on Python ints (numpy object arrays). The planner rounds its target once, at
80 digits: a rounding boundary it could then misjudge lies within ``|t| * 1e-79`` of the exact
value, while an exact value that is not on a boundary is at least ``1 / (2 D)`` from it; with
``|t|`` and ``D`` below 1e38 the two never meet, and past that the rows go to the planner.

Longer than 400 lines on purpose: the columns, the kernel and the Plans it builds each mirror
``planner._plan`` branch by branch, and are read (and changed) beside it and each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

from app.domain.decimals import round_to_step
from app.domain.model import EquityReading, Fill, Side, SkipReason
from app.domain.plan_model import (
    InstrumentRules,
    Plan,
    PlannedLeg,
    Rounding,
    SizingMode,
    SizingSettings,
    SubscriptionStatus,
)
from app.domain.planner import EQUITY_FLOOR, _gate
from app.domain.positions import FillEffect, effect_of, sign, signed_qty
from app.domain.vector_units import (
    EQUITY_SCALE,
    LIMIT,
    MICROSECOND,
    SIZING,
    ceil,
    clamp,
    equity_units,
    micros,
    whole_steps,
)

Ints = npt.NDArray[Any]  # int64, or object (Python ints) past the int64 guard
Bools = npt.NDArray[np.bool_]

EXACT = 10**38  # the planner's 80-digit target agrees with the exact one below this (see above)
_ZERO = Decimal(0)

# Reason codes: 0 is no reason.
REASONS: tuple[SkipReason | None, ...] = (None, *SkipReason)
_CODE = {reason: code for code, reason in enumerate(REASONS)}
NO_EQUITY, STALE_EQUITY = _CODE[SkipReason.NO_EQUITY], _CODE[SkipReason.STALE_EQUITY]
CLOSE_ONLY, ROUNDS_TO_ZERO = _CODE[SkipReason.CLOSE_ONLY], _CODE[SkipReason.ROUNDS_TO_ZERO]
BELOW_MIN_QTY, BELOW_MIN_NOTIONAL = (
    _CODE[SkipReason.BELOW_MIN_QTY],
    _CODE[SkipReason.BELOW_MIN_NOTIONAL],
)
NO_POSITION, TARGET_REACHED = (
    _CODE[SkipReason.NO_POSITION_TO_REDUCE],
    _CODE[SkipReason.TARGET_REACHED],
)

# What a row's plan explains besides its legs (Plan.target, ratio, raw_qty, residue).
SKIP, HELD, FLAT, THROUGH, REACHED, TRADE = range(6)


def covers(settings: SizingSettings) -> bool:
    """Tell whether this module sizes a subscription with these settings (else: the planner)."""
    return (
        settings.mode == SizingMode.TARGET
        and settings.max_order_notional is None
        and settings.max_position_notional is None
        and settings.max_leverage is None
        and settings.max_slippage is None
    )


# One row's settings and rules in the kernel's integers (``_static``): gate, nearest,
# close_only, max_age, has_floor, floor, gn, gd, min_qty, notional rules index, multiplier
# digits, and whether the planner must size it instead.
_Static = tuple[int, bool, bool, int, bool, int, int, int, int, int, int, bool]


class TargetRows:
    """The integer columns of many subscriptions sized in one leader symbol.

    Built at once from each row's settings, rules, position and equity reading, and kept in
    numpy arrays, so a fill reads them without a Python loop; ``commit`` moves them after a
    fill, ``set_position``, ``set_status`` and ``set_equity`` one row at a time.
    """

    def __init__(
        self,
        leader_symbol: str,
        rows: Sequence[tuple[SizingSettings, InstrumentRules, Decimal]],
        readings: Sequence[EquityReading | None],
    ) -> None:
        self.count = len(rows)
        self.leader_symbol = leader_symbol
        self.steps: list[Decimal] = [rules.qty_step for _, rules, _ in rows]
        # Distinct (step, min_notional) pairs: the notional minimum in steps is per fill.
        self.notional_rules: list[tuple[Fraction, Fraction]] = []
        self._notional_index: dict[tuple[Fraction, Fraction], int] = {}
        # Subscriptions share a few settings and rules: each distinct pair is converted once.
        known: dict[tuple[Any, ...], _Static] = {}
        statics: list[_Static] = []
        for settings, rules, _ in rows:
            key = (
                settings.multiplier, settings.rounding, settings.status, settings.equity_floor,
                settings.max_equity_age_s, settings.allow, settings.deny, id(rules),
            )  # fmt: skip
            static = known.get(key)
            if static is None:
                static = known[key] = self._static(settings, rules)
            statics.append(static)
        columns = list(zip(*statics, strict=True)) if statics else [()] * 12
        ints = [np.array(column, dtype=np.int64) for column in columns]
        self.gate, self.max_age, self.floor = ints[0], ints[3], ints[5]
        self.gn, self.gd, self.min_qty, self.rules, self.m_digits = ints[6:11]
        flags = [np.array(column, dtype=np.bool_) for column in columns]
        self.nearest, self.close_only, self.has_floor = flags[1], flags[2], flags[4]
        self.bad_row = flags[11]  # rows the planner sizes: settings not whole in these units
        positions = [whole_steps(p, step) for (_, _, p), step in zip(rows, self.steps, strict=True)]
        self.position = np.array([p or 0 for p in positions], dtype=np.int64)
        self.bad_position = np.array([p is None for p in positions], dtype=np.bool_)
        equities = [equity_units(reading) for reading in readings]
        self.has_equity = np.array([r is not None for r in readings], dtype=np.bool_)
        self.equity = np.array([units or 0 for units, _ in equities], dtype=np.int64)
        self.as_of = np.array([as_of for _, as_of in equities], dtype=np.int64)
        self.bad_equity = np.array(
            [
                units is None and r is not None
                for (units, _), r in zip(equities, readings, strict=True)
            ],
            dtype=np.bool_,
        )

    def _static(self, settings: SizingSettings, rules: InstrumentRules) -> _Static:
        step = Fraction(rules.qty_step)
        gate = _CODE[_gate(settings, self.leader_symbol, rules.symbol)]
        nearest = settings.rounding == Rounding.NEAREST
        close_only = settings.status == SubscriptionStatus.CLOSE_ONLY
        key = (step, Fraction(rules.min_notional))
        index = self._notional_index.get(key)
        if index is None:
            index = self._notional_index[key] = len(self.notional_rules)
            self.notional_rules.append(key)
        min_qty = clamp(ceil(Fraction(rules.min_qty) / step))
        digits = len(settings.multiplier.as_tuple().digits)
        floor = settings.equity_floor
        floor_units = 0 if floor is None else clamp(ceil(Fraction(floor) * EQUITY_SCALE))
        ratio = Fraction(settings.multiplier) / (step * EQUITY_SCALE)
        age = settings.max_equity_age_s
        try:
            max_age = LIMIT if age is None else timedelta(seconds=age) // MICROSECOND
        except OverflowError:  # the planner reports it
            max_age = LIMIT
            ratio = Fraction(LIMIT)
        bad = ratio.numerator >= LIMIT or ratio.denominator >= LIMIT
        gn, gd = (0, 1) if bad else (ratio.numerator, ratio.denominator)
        return (
            gate, nearest, close_only, max_age, floor is not None, floor_units, gn, gd, min_qty,
            index, digits, bad,
        )  # fmt: skip

    def set_status(self, row: int, status: SubscriptionStatus) -> None:
        # A paused subscription is gated at build: only close_only moves.
        self.close_only[row] = status == SubscriptionStatus.CLOSE_ONLY

    def set_position(self, row: int, position: Decimal) -> None:
        """Set a row's position (its follower symbol's, signed)."""
        steps = whole_steps(position, self.steps[row])
        self.bad_position[row] = steps is None
        self.position[row] = steps or 0

    def set_equity(self, row: int, reading: EquityReading | None) -> None:
        """Set a row's follower equity reading (None: there is none)."""
        units, as_of = equity_units(reading)
        self.has_equity[row] = reading is not None
        self.bad_equity[row] = units is None and reading is not None
        self.equity[row], self.as_of[row] = units or 0, as_of

    def size(
        self, fill: Fill, leader_before: Decimal, leader: EquityReading | None, now: datetime
    ) -> Sized | None:
        """Size every row for one leader fill; None when the planner must size them all (a
        fill it refuses, or values past the exactness bound)."""
        if fill.price <= 0 or fill.qty <= 0 or self.count == 0:
            return None  # the planner raises the error
        if leader is not None and leader.as_of.tzinfo is None:
            return None  # a naive timestamp: the planner compares it only under a max age
        with localcontext(SIZING):
            leader_after = leader_before + signed_qty(fill.side, fill.qty)
        inputs = _FillScalars(fill, leader_before, leader_after, leader, now)
        operands = _operands(self, inputs)
        if operands is None:
            return None
        return _kernel(self, inputs, operands)

    def commit(self, sized: Sized) -> None:
        """Move the rows the way the fill's plans moved them, once they are recorded."""
        good = ~sized.fallback
        self.position[good] = sized.after_steps[good].astype(np.int64)
        self.close_only |= sized.floor_hit & good


@dataclass(frozen=True, slots=True)
class _FillScalars:
    fill: Fill
    leader_before: Decimal
    leader_after: Decimal
    leader: EquityReading | None
    now: datetime


@dataclass(frozen=True, slots=True)
class _Operands:
    """The kernel's integers: int64 arrays when every product fits, else Python ints."""

    e: Ints  # follower equity, 1e-8 units
    gn: Ints  # multiplier / (step x 1e8), numerator
    d: Ints  # its denominator x the leader's, the target's denominator
    p: Ints  # position, steps
    min_qty: Ints  # steps
    min_notional: Ints  # steps, at this fill's price
    n: int  # leader position after / leader equity, numerator


def _operands(rows: TargetRows, inputs: _FillScalars) -> _Operands | None:
    """The kernel's operands; None past the exactness bound (the planner sizes every row)."""
    leader, after = inputs.leader, inputs.leader_after
    per_equity = Fraction(0)  # no usable leader equity: every row has an equity reason
    if leader is not None and leader.equity > 0:
        per_equity = Fraction(after) / Fraction(leader.equity)
    n, dn = per_equity.numerator, per_equity.denominator
    price = Fraction(inputs.fill.price)
    notional = [clamp(ceil(least / (step * price))) for step, least in rows.notional_rules]
    min_notional = np.array(notional, dtype=np.int64)[rows.rules]
    most_e = int(np.abs(rows.equity).max())
    most_gn, most_d = int(rows.gn.max()), int(rows.gd.max()) * dn
    most_p = int(np.abs(rows.position).max())
    most_t = most_e * most_gn * abs(n) // (int(rows.gd.min()) * dn) + 1
    # The planner's product l1 x F x m is exact at 80 digits, its target below EXACT.
    digits = len(after.as_tuple().digits) + len(str(most_e)) + int(rows.m_digits.max())
    if most_d >= EXACT or most_t >= EXACT or digits > 79:
        return None
    if (
        most_e * most_gn < LIMIT
        and most_d < LIMIT
        and abs(n) * most_d < LIMIT
        and most_t + most_p < LIMIT // 4
    ):
        return _Operands(
            rows.equity, rows.gn, rows.gd * dn, rows.position, rows.min_qty, min_notional, n
        )
    wide = [a.astype(object) for a in (rows.equity, rows.gn, rows.gd, rows.position)]
    return _Operands(
        wide[0], wide[1], wide[2] * dn, wide[3], rows.min_qty.astype(object),
        min_notional.astype(object), n,
    )  # fmt: skip


class Sized:
    """One fill's plans for every row, as columns (Python lists: a row is read one value at a
    time, and a list reads faster than an array); ``plan(row)`` builds a row's Plan."""

    __slots__ = (
        "after", "after_steps", "against", "case", "close", "effect", "fallback", "floor_hit",
        "inputs", "nearest", "opened", "reason", "rounded", "rows", "status_change", "targeted",
    )  # fmt: skip

    def __init__(
        self, rows: TargetRows, inputs: _FillScalars, effect: FillEffect, **columns: Any
    ) -> None:
        self.rows, self.inputs, self.effect = rows, inputs, effect
        self.fallback: Bools = columns["fallback"]  # rows the planner sizes instead
        self.after_steps: Ints = columns["after"]  # position once every leg fills, steps
        self.floor_hit: Bools = columns["status_change"]
        self.case: list[int] = columns["case"].tolist()
        self.reason: list[int] = columns["reason"].tolist()
        self.close: list[int] = columns["close"].tolist()  # reduce_only leg, steps (0: none)
        # The close leg is on the fill's other side (a follower out of sync).
        self.against: list[bool] = columns["against"].tolist()
        self.opened: list[int] = columns["opened"].tolist()  # opening leg, steps (0: none)
        self.after: list[int] = columns["after"].tolist()
        self.status_change: list[bool] = columns["status_change"].tolist()
        # The target was computed (the plan reports it and the ratio), and the steps the
        # rounding kept before minimums (the residue's complement).
        self.targeted: list[bool] = columns["targeted"].tolist()
        self.rounded: list[int] = columns["rounded"].tolist()
        self.nearest: list[bool] = rows.nearest.tolist()

    def plan(
        self,
        row: int,
        symbol: str,
        position: Decimal,
        follower: EquityReading | None,
        multiplier: Decimal,
    ) -> Plan:
        """Row ``row``'s Plan, as the planner makes it (call inside ``planner.planning()``).

        ``position`` is the row's position as a Decimal, ``follower`` its equity reading and
        ``multiplier`` its setting: the explanation's figures are computed from them.
        """
        return _build_plan(self, row, symbol, position, follower, multiplier)


def _equity_reasons(rows: TargetRows, inputs: _FillScalars, e: Ints) -> tuple[Ints, Bools]:
    """Each row's equity reason (planner._equities: missing beats stale; a reading is stale
    before it is not positive), and whether its follower reading is fresh."""
    now = micros(inputs.now)
    fresh = rows.has_equity & (now - rows.as_of <= rows.max_age)
    follower = np.where(~rows.has_equity, NO_EQUITY, np.where(~fresh, STALE_EQUITY, 0))
    follower = np.where((follower == 0) & (e <= 0), NO_EQUITY, follower)
    leader = inputs.leader
    if leader is None:
        leader_reason: Ints = np.full(rows.count, NO_EQUITY)
    else:
        leader_fresh = now - micros(leader.as_of) <= rows.max_age
        leader_reason = np.where(leader_fresh, NO_EQUITY if leader.equity <= 0 else 0, STALE_EQUITY)
    missing = (leader_reason == NO_EQUITY) | (follower == NO_EQUITY)
    stale = (leader_reason == STALE_EQUITY) | (follower == STALE_EQUITY)
    return np.where(missing, NO_EQUITY, np.where(stale, STALE_EQUITY, 0)), fresh


def _kernel(rows: TargetRows, inputs: _FillScalars, ops: _Operands) -> Sized:
    """planner._plan for every row, branch by branch, as masks over the rows."""
    fill, l0, l1 = inputs.fill, inputs.leader_before, inputs.leader_after
    d = 1 if fill.side is Side.BUY else -1
    effect = effect_of(l0, l1)
    e, p, big_d, n = ops.e, ops.p, ops.d, ops.n
    zero = np.zeros(rows.count, dtype=p.dtype)
    sp = np.sign(p).astype(np.int64)
    held = np.abs(p)
    gate_ok = rows.gate == 0
    equity_reason, fresh = _equity_reasons(rows, inputs, e)
    floor_hit = gate_ok & rows.has_floor & ~rows.close_only & fresh & (e < rows.floor)
    close_only = rows.close_only | floor_hit

    # The target in steps, Q + R / D with 0 <= R < D: W n / D = (W // D) n + (W % D) n / D.
    w = np.where(e > 0, e, zero) * ops.gn
    rn = (w % big_d) * n
    target_q, target_r = (w // big_d) * n + rn // big_d, rn % big_d

    # A reducing fill against a follower on the other side (or flat): close it whole.
    if effect in (FillEffect.REDUCE, FillEffect.CLOSE):
        out_of_sync = gate_ok & (sp != sign(l0))
    else:
        out_of_sync = np.zeros(rows.count, dtype=np.bool_)
    held_close = out_of_sync & (p != 0)
    rest = gate_ok & ~out_of_sync
    case = np.where(held_close, HELD, SKIP)
    reason = np.where(gate_ok, 0, rows.gate)
    reason = np.where(out_of_sync & (p == 0), NO_POSITION, reason)
    close = np.where(held_close, held, zero)
    opened = zero
    after = np.where(held_close, zero, p)
    targeted = np.zeros(rows.count, dtype=np.bool_)
    rounded = zero

    if l1 == 0:
        # The leader is flat: the whole position, on the fill's side.
        case = np.where(rest, FLAT, case)
        close = np.where(rest, held, close)
        after = np.where(rest, zero, after)
    else:
        through = rest & (sp == -d) & (sign(l1) == d)
        skip_close_only = rest & ~through & close_only & (sp != -d)
        skip_equity = rest & ~through & ~skip_close_only & (equity_reason != 0)
        sized = rest & ~through & ~skip_close_only & ~skip_equity
        reason = np.where(skip_close_only, CLOSE_ONLY, reason)
        reason = np.where(skip_equity, equity_reason, reason)

        # Through zero: close all of it, then open toward the target from flat.
        open_reason = np.where(close_only, CLOSE_ONLY, equity_reason)
        vi, vr = _directed(target_q, target_r, big_d, d, zero)
        k_open = _rounded(vi, vr, big_d, rows.nearest, False)
        why = np.where(open_reason != 0, open_reason, _minimum(k_open, ops))
        case = np.where(through, THROUGH, case)
        close = np.where(through, held, close)
        opened = np.where(through & (why == 0), k_open, opened)
        reason = np.where(through, why, reason)
        after = np.where(through, d * opened, after)
        through_targeted = through & (open_reason == 0)
        rounded = np.where(through_targeted, k_open, rounded)

        # Toward the target, in the fill's direction only.
        vi, vr = _directed(target_q, target_r, big_d, d, p)
        ahead = (vi > 0) | ((vi == 0) & (vr > 0))
        trade = sized & ahead
        case = np.where(sized & ~ahead, REACHED, np.where(trade, TRADE, case))
        reason = np.where(sized & ~ahead, TARGET_REACHED, reason)
        against = sp == -d
        k = _rounded(vi, vr, big_d, rows.nearest, against)
        # A reducing order: the part up to the position closes, the rest opens.
        k_close = np.where(against, np.minimum(k, held), zero)
        k_rest = k - k_close
        beyond = ~against | (vi > held) | ((vi == held) & (vr > 0))
        close_why = np.where(against & (k_close != held), _minimum(k_close, ops), 0)
        closes = trade & against & (close_why == 0)
        rest_why = np.where(close_only, CLOSE_ONLY, _minimum(k_rest, ops))
        tries = trade & (close_why == 0) & beyond
        close = np.where(closes, k_close, close)
        opened = np.where(tries & (rest_why == 0), k_rest, opened)
        reason = np.where(trade & (close_why != 0), close_why, reason)
        reason = np.where(tries & (rest_why != 0), rest_why, reason)
        after = np.where(trade, p + d * np.where(trade, close + opened, zero), after)
        targeted = through_targeted | sized
        rounded = np.where(trade, k, rounded)

    return Sized(
        rows,
        inputs,
        effect,
        fallback=rows.bad_row | rows.bad_position | rows.bad_equity,
        case=case,
        reason=reason,
        close=close,
        against=held_close,
        opened=opened,
        after=after,
        status_change=floor_hit,
        targeted=targeted,
        rounded=rounded,
    )


def _directed(q: Ints, r: Ints, big_d: Ints, d: int, base: Ints) -> tuple[Ints, Ints]:
    """``d x (Q + R / D - base)`` as a floor and a remainder over D."""
    if d == 1:
        return q - base, r
    return base - q - (r > 0), np.where(r > 0, big_d - r, 0 * r)


def _rounded(vi: Ints, vr: Ints, big_d: Ints, nearest: Bools, reducing: Bools | bool) -> Ints:
    """A size ``vi + vr / D`` (>= 0) in whole steps, as planner._round rounds it: down, up
    when reducing, or to the nearest (a tie to the even step)."""
    up = vi + (vr > 0)
    twice = 2 * vr
    half_even = vi + ((twice > big_d) | ((twice == big_d) & (vi % 2 == 1)))
    return np.where(nearest, half_even, np.where(reducing, up, vi))


def _minimum(k: Ints, ops: _Operands) -> Ints:
    """controls.minimum_reason in steps: rounds to zero, below the minimum qty or notional."""
    return np.where(
        k <= 0,
        ROUNDS_TO_ZERO,
        np.where(
            k < ops.min_qty, BELOW_MIN_QTY, np.where(k < ops.min_notional, BELOW_MIN_NOTIONAL, 0)
        ),
    )


def _build_plan(
    sized: Sized,
    row: int,
    symbol: str,
    f0: Decimal,
    follower: EquityReading | None,
    multiplier: Decimal,
) -> Plan:
    """The kernel decided the branch, the legs and the reason; the figures are the
    planner's own Decimal expressions, so that each one is the same to the digit (a stored
    NUMERIC keeps its scale: 0.2 and 0.20000000 are not the same row)."""
    inputs = sized.inputs
    fill, l0, l1 = inputs.fill, inputs.leader_before, inputs.leader_after
    d = 1 if fill.side is Side.BUY else -1
    step = sized.rows.steps[row]
    case = sized.case[row]
    held = abs(f0)
    legs: tuple[PlannedLeg, ...] = ()
    ratio: Decimal | None = None
    target: Decimal | None = None
    raw: Decimal | None = None
    residue = _ZERO
    position = f0
    if case == HELD:
        side = Side.SELL if f0 > 0 else Side.BUY
        legs = (PlannedLeg(side=side, qty=held, reduce_only=True),)
        raw, position = held, _ZERO
        target = _ZERO if l1 == 0 else None
    elif case == FLAT:
        legs = (PlannedLeg(side=fill.side, qty=held, reduce_only=True),)
        raw, target, position = held + _ZERO, _ZERO, f0 + d * held
        residue = raw - held - _ZERO
    elif case in (THROUGH, TRADE, REACHED):
        close, opened = _ZERO, _ZERO
        if sized.targeted[row]:
            assert inputs.leader is not None
            assert follower is not None
            leader_equity, follower_equity = inputs.leader.equity, follower.equity
            target = l1 * follower_equity * multiplier / leader_equity
            ratio = follower_equity / leader_equity
        if case == THROUGH:
            close = held
            if target is not None:
                open_raw = abs(target)
                opened = _step_round(open_raw, step, sized.nearest[row], False)
                raw = held + open_raw
            else:
                raw = held + _ZERO
            residue = raw - close - opened
        elif case == TRADE:
            assert target is not None
            size = abs(target - f0)
            reducing = sign(f0) == -d
            qty = _step_round(size, step, sized.nearest[row], reducing)
            if reducing:
                close_raw = min(size, held)
                close = min(qty, held)
                raw = close_raw + (size - close_raw)
                opened = round_to_step(qty - close, step)
            else:
                raw, opened = _ZERO + size, qty
            residue = raw - close - opened
        built: list[PlannedLeg] = []
        if sized.close[row]:
            built.append(PlannedLeg(side=fill.side, qty=close, reduce_only=True))
            position = f0 + d * close
        if sized.opened[row]:
            built.append(PlannedLeg(side=fill.side, qty=opened, reduce_only=False))
            position += d * opened
        legs = tuple(built)
    if not legs:
        position = f0
    floor_hit = sized.status_change[row]
    return Plan(
        symbol=symbol,
        legs=legs,
        skip_reason=REASONS[sized.reason[row]],
        effect=sized.effect,
        leader_position_before=l0,
        leader_position_after=l1,
        follower_position_before=f0,
        follower_position_after=position,
        ratio=ratio,
        target=target,
        raw_qty=raw,
        residue=residue,
        status_change=SubscriptionStatus.CLOSE_ONLY if floor_hit else None,
        status_reason=EQUITY_FLOOR if floor_hit else None,
    )


def _step_round(size: Decimal, step: Decimal, nearest: bool, reducing: bool) -> Decimal:
    """planner._round, in the caller's (sizing) context."""
    mode = ROUND_HALF_EVEN if nearest else ROUND_CEILING if reducing else ROUND_DOWN
    return (size / step).to_integral_value(rounding=mode) * step
