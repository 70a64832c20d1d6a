"""Response bodies of the v1 API's read side: positions, orders and fills, health, the
dashboard's overviews and a follower's exchange account.

Split from app.api.schemas (the bodies of what callers create and change): these only ever
leave the service, so none of them validates input.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from app.api.schemas import DecimalStr, FollowerOut, LeaderOut, SubscriptionOut


class SubscriptionPositionOut(BaseModel):
    subscription_id: UUID
    leader_id: UUID
    symbol: str = Field(description="The follower's symbol.")
    leader_symbol: str
    position: DecimalStr = Field(description="What sizing assumes the follower holds.")
    target: DecimalStr | None = Field(description="Leader position x equity ratio x multiplier.")
    leader_position: DecimalStr
    actual: DecimalStr | None = Field(
        description="The follower's actual position in this symbol: its venue's (the same on "
        "every subscription trading the symbol) when an account is connected, else the sum of "
        "executor fill reports, when any."
    )
    actual_source: Literal["venue", "reports"] | None = Field(
        default=None, description="Where ``actual`` comes from."
    )
    symbol_target: DecimalStr | None = Field(
        default=None,
        description="The sum of the targets of the follower's subscriptions in this symbol: "
        "what ``actual`` should be (plus ``adopted``).",
    )
    drift_flagged: bool = Field(
        default=False,
        description="The venue's position is away from symbol_target + adopted by more than a "
        "lot step and the subscription's drift_tolerance (drift: alert, resync).",
    )
    drift_fraction: DecimalStr | None = Field(
        default=None, description="The last drift measured, in notional terms over equity."
    )
    adopted: DecimalStr = Field(
        default=Decimal(0),
        description="What the follower holds on its own in this symbol, accepted under "
        "drift: adopt; sizing never trades it.",
    )


class DashboardPositionOut(SubscriptionPositionOut):
    """A follower's position in one symbol next to its target, for the dashboard."""

    follower_id: UUID
    drift: DecimalStr | None = Field(
        default=None, description="actual - target, when both are known."
    )


class ListenerHealthOut(BaseModel):
    leader_id: UUID
    state: str | None
    alive: bool
    reconnects: int | None = None
    last_error: str | None = None


class HealthOut(BaseModel):
    """The health strip: this instance's readiness, the outbox, listeners, live instances."""

    status: Literal["ready", "draining", "not_ready"]
    ready: bool
    draining: bool
    postgres: str
    redis: str
    outbox_backlog: int
    instances: int | None = Field(description="Instances alive (admin only).")
    listeners: list[ListenerHealthOut] = Field(description="This instance's (admin only).")


class LeaderPositionOut(BaseModel):
    symbol: str
    qty: DecimalStr


class FillFacts(BaseModel):
    """What the venue said about the leader's fill besides the trade."""

    liquidation: bool = Field(description="The leader's position was liquidated or ADL'd.")
    reduce_only: bool | None = Field(description="None: the venue does not say.")
    fee: DecimalStr | None = Field(description="The leader's fee; negative is a rebate.")
    fee_asset: str | None
    kind: Literal["trade", "sync"] = Field(
        description="trade: the leader's execution; sync: followers brought to target."
    )
    reason: str | None = Field(
        description="Why a sync: copy_open_positions, leader_resync or follower_resync (None "
        "for a trade)."
    )


class OrderOut(BaseModel):
    order_id: str
    follower_id: UUID
    leader_id: UUID
    subscription_id: UUID
    leader_fill_id: str
    symbol: str
    side: str
    qty: DecimalStr
    type: str
    reduce_only: bool
    limit_price: DecimalStr | None
    time_in_force: str | None
    status: str
    skip_reason: str | None
    filled_qty: DecimalStr
    avg_price: DecimalStr | None
    created_at: datetime
    dispatched_at: datetime | None
    valid_until: datetime
    sizing: dict[str, Any]
    leader_fill: FillFacts


class OrderEventOut(BaseModel):
    status: str
    filled_qty: DecimalStr
    avg_price: DecimalStr | None
    reason: str | None
    at: datetime


class FillOut(FillFacts):
    fill_id: str = Field(description="The venue's trade id (as the adapter spells it).")
    symbol: str
    side: str
    qty: DecimalStr
    price: DecimalStr
    event_at: datetime
    received_at: datetime


class OrderDetail(OrderOut):
    fill: FillOut
    events: list[OrderEventOut]


# --- dashboard (app/api/dashboard.py) ---------------------------------------------------------


class SessionOut(BaseModel):
    role: Literal["admin", "follower"]
    follower_id: UUID | None = None
    follower_name: str | None = None


class LeaderOverview(LeaderOut):
    equity: DecimalStr | None
    equity_as_of: datetime | None
    subscribers: int = Field(description="Live (not deleted) subscriptions to this leader.")
    push_sockets: int = Field(description="Push sockets of this leader open on this instance.")


class FollowerOverview(FollowerOut):
    equity: DecimalStr | None
    equity_as_of: datetime | None
    subscriptions: list[SubscriptionOut]


class ExposureOut(BaseModel):
    """One subscription and symbol: each side's exposure / equity at the leader's last price.

    In sync, ``follower_ratio`` equals ``target_ratio`` (the leader's ratio x multiplier) up to
    lot rounding; ratios are signed (short is negative) and rounded to 6 places for display.
    """

    subscription_id: UUID
    follower_id: UUID
    leader_id: UUID
    status: str
    multiplier: DecimalStr
    symbol: str = Field(description="The follower's symbol.")
    leader_symbol: str
    mark_price: DecimalStr | None = Field(description="The leader's last fill price.")
    follower_position: DecimalStr
    leader_position: DecimalStr
    follower_equity: DecimalStr | None
    leader_equity: DecimalStr | None
    follower_ratio: DecimalStr | None
    leader_ratio: DecimalStr | None
    target_ratio: DecimalStr | None


class HistogramBucketOut(BaseModel):
    le: str = Field(description="Upper bound in seconds, or +Inf.")
    count: int = Field(description="Observations in this bucket alone (not cumulative).")


class HistogramOut(BaseModel):
    metric: str
    stage: str | None
    description: str
    count: int
    sum_seconds: float
    buckets: list[HistogramBucketOut]


class AccountOut(BaseModel):
    """A follower's exchange account as the service sees it. Credentials are never returned."""

    kind: str
    status: Literal["connecting", "ready", "error"]
    last_error: str | None = Field(description="Why the account is in error, when it is.")
    equity: DecimalStr | None = Field(
        description="The margin balance last read from the venue (wallet balance plus "
        "unrealized PnL, in the settlement currency)."
    )
    equity_at: datetime | None
    positions_at: datetime | None = Field(description="When the venue's positions were read.")
