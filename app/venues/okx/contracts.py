"""OKX swap sizes: contracts on the wire, base units in the execution contract (pure).

A linear swap's contract is worth ``ctVal`` of the base currency (BTC-USDT-SWAP: 0.01 BTC), so
an order of ``qty`` base units is ``qty / ctVal`` contracts, a multiple of ``lotSz``. Inverse
swaps are worth ``ctVal`` USD: their base size moves with the price, so they are not traded.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from app.venues.okx.schemas import Instrument
from app.venues.transport import to_step


@dataclass(frozen=True, slots=True)
class Contract:
    inst_id: str
    ct_val: Decimal
    lot: Decimal
    min_size: Decimal
    tick: Decimal
    inverse: bool

    @classmethod
    def of(cls, row: Instrument) -> Contract:
        """From a public instruments row; ValueError names a missing or bad field."""
        values: dict[str, Decimal] = {}
        for name in ("ctVal", "lotSz", "minSz", "tickSz"):
            try:
                value = Decimal(getattr(row, name))
            except InvalidOperation as exc:
                raise ValueError(f"{row.instId} {name}: not a decimal") from exc
            if not (value.is_finite() and value > 0):
                raise ValueError(f"{row.instId} {name}: must be positive")
            values[name] = value
        return cls(
            row.instId,
            values["ctVal"],
            values["lotSz"],
            values["minSz"],
            values["tickSz"],
            inverse=row.ctType == "inverse",
        )

    def contracts(self, qty: Decimal) -> Decimal:
        """``qty`` base units as contracts: ``qty / ctVal`` rounded DOWN to ``lotSz``.

        Sizing already rounds to the follower's lot (a whole number of lots of ``ctVal``), so
        a remainder here is a bug upstream; rounding down never sends more than was sized.
        """
        return to_step(qty / self.ct_val, self.lot)

    def base(self, contracts: Decimal) -> Decimal:
        """``contracts`` as base units."""
        return contracts * self.ct_val
