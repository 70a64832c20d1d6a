"""Request and response bodies of the v1 API. Requests forbid unknown fields."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AnyUrl,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    UrlConstraints,
    ValidationInfo,
    field_validator,
)

from app.domain.decimals import fmt
from app.ingest.frames import MAX_CLOCK_SKEW, SYMBOL_PATTERN
from app.venues.configs import BinanceUsdmFeed, BybitFeed, HyperliquidFeed, OkxFeed

# Bounded so that sizing products stay exact (see app.domain.decimals.SIZING_PRECISION): at most
# 30 digits in all, wherever the point is (decimal_places=18 would cap the whole part at 12).
_DecimalIn = Annotated[
    Decimal,
    Field(max_digits=30, allow_inf_nan=False),
    # Stored settings read like every other amount the API shows ("5000", not "5E+3").
    PlainSerializer(fmt, return_type=str, when_used="json"),
]
Positive = Annotated[_DecimalIn, Field(gt=0)]
NonNegative = Annotated[_DecimalIn, Field(ge=0)]
DecimalStr = Annotated[Decimal, PlainSerializer(fmt, return_type=str, when_used="json")]
# No control characters: Postgres text cannot hold NUL, and names are shown in logs and UIs.
Name = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]
Symbol = Annotated[str, Field(pattern=SYMBOL_PATTERN)]
WsUrl = Annotated[AnyUrl, UrlConstraints(allowed_schemes=["ws", "wss"], max_length=2000)]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PushFeed(Request):
    kind: Literal["push"]


class GenericFeed(Request):
    kind: Literal["generic"]
    url: WsUrl


Feed = Annotated[
    PushFeed | GenericFeed | BinanceUsdmFeed | BybitFeed | OkxFeed | HyperliquidFeed,
    Field(discriminator="kind"),
]


class LeaderCreate(Request):
    name: Name
    feed: Feed


class LeaderPatch(Request):
    status: Literal["active", "paused"] = Field(
        description="paused: the leader's listener stops; its subscriptions stay."
    )


class FeedOut(BaseModel):
    kind: str
    url: str | None = None
    # Venue feeds: base URLs and options. Credentials are never returned.
    config: dict[str, Any] | None = None


class LeaderOut(BaseModel):
    id: UUID
    name: str
    status: str
    feed: FeedOut
    created_at: datetime
    listener: dict[str, Any] | None = None


class LeaderCreated(LeaderOut):
    push_token: str | None = Field(
        default=None, description="Push-mode credential. Shown only once."
    )


class EquityIn(Request):
    equity: Positive
    as_of: datetime | None = None

    @field_validator("as_of")
    @classmethod
    def _not_in_the_future(cls, value: datetime | None) -> datetime | None:
        # The newest as_of wins: a future-dated snapshot would shadow every real one until then.
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        if value > datetime.now(UTC) + MAX_CLOCK_SKEW:
            raise ValueError("must not be more than 5 minutes in the future")
        return value


class EquityOut(BaseModel):
    id: int
    equity: DecimalStr
    as_of: datetime


VenueName = Literal["binance-usdm", "bybit", "okx", "hyperliquid"]
Asset = Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,32}$")]


class InstrumentIn(Request):
    qty_step: Positive
    min_qty: NonNegative = Decimal(0)
    min_notional: NonNegative = Decimal(0)
    price_step: Positive | None = Field(
        default=None, description="Tick size: limit prices (max_slippage) round to it."
    )
    base: Asset | None = Field(
        default=None,
        description="With ?venue=: the base asset, for a symbol the venue's list lacks "
        "(otherwise the venue's is kept).",
    )
    quote: Asset | None = Field(default=None, description="With ?venue=: like base.")


class InstrumentOut(BaseModel):
    symbol: str
    qty_step: DecimalStr
    min_qty: DecimalStr
    min_notional: DecimalStr
    price_step: DecimalStr | None
    venue: str | None = Field(default=None, description="None: rules for every follower "
                              "whose venue is not known.")  # fmt: skip
    source: Literal["operator", "venue"] = Field(
        default="operator", description="Who set these rules: an operator (PUT) or the venue."
    )


class VenueInstrumentOut(InstrumentOut):
    """A venue's rules for one perpetual, all sizes in base units."""

    base: str
    quote: str
    max_qty: DecimalStr | None
    market_qty_step: DecimalStr | None = Field(description="A market order's own step.")
    market_min_qty: DecimalStr | None
    market_max_qty: DecimalStr | None
    price_sig_figs: int | None
    price_max_decimals: int | None
    contract_size: DecimalStr = Field(description="Base units per venue unit (OKX: ctVal).")


class FollowerCreate(Request):
    name: Name


class ApiKeyOut(BaseModel):
    follower_id: UUID
    api_key: str = Field(description="The follower's new API key. Shown only once.")


class PushTokenOut(BaseModel):
    leader_id: UUID
    push_token: str = Field(description="The leader's new push token. Shown only once.")


class FollowerOut(BaseModel):
    id: UUID
    name: str
    created_at: datetime


class FollowerCreated(FollowerOut):
    api_key: str = Field(description="The follower's API key. Shown only once.")


class SymbolsIn(Request):
    allow: list[Symbol] | None = Field(
        default=None, max_length=500, description="Only these leader symbols are copied."
    )
    deny: list[Symbol] = Field(default_factory=list, max_length=500)
    map: dict[Symbol, Symbol] = Field(
        default_factory=dict, max_length=500, description="Leader symbol -> follower symbol."
    )
    venue: VenueName | None = Field(
        default=None,
        description="The venue the follower trades on: leader symbols are mapped to its "
        "listings by base asset and sized with its rules (map still wins); a symbol it does "
        "not list is skipped as symbol_not_listed.",
    )
    quote: Literal["USDT", "USDC"] | None = Field(
        default=None, description="The quote preferred where the venue lists both."
    )


class SizingIn(Request):
    """How a subscription sizes its orders, and the caps on them. All optional."""

    mode: Literal["target", "per_fill", "fixed_multiplier", "fixed_notional"] = "target"
    notional: Positive | None = Field(
        default=None,
        description="Quote amount per opening fill (fixed_notional).",
        validate_default=True,
    )
    max_order_notional: Positive | None = None
    max_position_notional: Positive | None = Field(default=None, description="Per symbol.")
    max_leverage: Positive | None = Field(
        default=None, description="Follower gross exposure / equity."
    )
    symbols: SymbolsIn | None = None
    max_slippage: Annotated[_DecimalIn, Field(ge=0, lt=1)] | None = Field(
        default=None, description="Opening orders become IOC limits at leader price +/- this."
    )
    max_equity_age_s: Annotated[int, Field(gt=0, le=30 * 86400)] | None = Field(
        default=None, description="Older equity snapshots count as missing (stale_equity)."
    )
    equity_floor: NonNegative | None = Field(
        default=None, description="Below this follower equity the subscription goes close_only."
    )
    rounding: Literal["conservative", "nearest"] = Field(
        default="conservative",
        description="Lot-step rounding: conservative never leaves a position above its target "
        "in size (openings round down, reductions up); nearest ends within half a step.",
    )

    @field_validator("notional", mode="after")
    @classmethod
    def _notional_for_fixed_notional(cls, value: Decimal | None, info: ValidationInfo) -> Any:
        # A field validator (run for the default too) so the error names "notional".
        if value is None and info.data.get("mode") == "fixed_notional":
            raise ValueError("notional: required when mode is fixed_notional")
        return value


class SubscriptionCreate(Request):
    leader_id: UUID
    multiplier: Positive = Decimal(1)
    sizing: SizingIn = Field(default_factory=SizingIn)
    copy_open_positions: bool = Field(
        default=False,
        description="Bring the follower to its target in every symbol the leader holds now, "
        "instead of at the leader's next fill.",
    )


class SubscriptionPatch(Request):
    status: Literal["active", "paused", "close_only"] | None = None
    multiplier: Positive | None = None
    sizing: SizingIn | None = Field(default=None, description="Replaces the whole object.")


class SkippedSymbol(BaseModel):
    symbol: str
    reason: str = Field(description="e.g. no_price, min_notional, symbol_denied.")


class OpenPositionsCopy(BaseModel):
    """The copy_open_positions job of a subscription: pending until it has run once."""

    status: Literal["pending", "done"]
    synced: list[str] = Field(default_factory=list, description="Leader symbols brought to target.")
    skipped: list[SkippedSymbol] = Field(default_factory=list)
    attempts: int = 0
    last_error: str | None = None


class SymbolMappingOut(BaseModel):
    leader_symbol: str
    symbol: str | None = Field(description="On the follower's venue; None: not listed there.")
    skip_reason: Literal["symbol_not_listed"] | None


class SubscriptionOut(BaseModel):
    id: UUID
    leader_id: UUID
    follower_id: UUID
    multiplier: DecimalStr
    status: str
    status_reason: str | None
    sizing: dict[str, Any]
    created_at: datetime
    open_positions: OpenPositionsCopy | None = Field(
        default=None, description="Set when subscribed with copy_open_positions."
    )
    symbols: list[SymbolMappingOut] = Field(
        default_factory=list,
        description="Per leader symbol seen, the follower's symbol on its venue (sizing."
        "symbols.venue); empty when the follower's venue is not known.",
    )


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
        "what ``actual`` should be.",
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
        description="Why a sync: copy_open_positions or leader_resync (None for a trade)."
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
