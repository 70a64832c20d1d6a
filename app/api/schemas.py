"""Bodies of what v1 API callers create and change, and the resources they get back.

Requests forbid unknown fields. The read side's responses (positions, orders, health, the
dashboard) are in app.api.views.
"""

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
    drift: Literal["alert", "resync", "adopt"] = Field(
        default="alert",
        description="When the venue's position differs from the target (an account connected): "
        "alert flags it; resync sends a correcting sync order (follower_resync); adopt "
        "accepts the venue's position as the follower's own.",
    )
    drift_tolerance: Annotated[_DecimalIn, Field(ge=0, lt=1)] = Field(
        default=Decimal("0.01"),
        description="A drift counts beyond one lot step and, in notional terms, beyond this "
        "fraction of the follower's equity.",
    )
    drift_min_interval_s: Annotated[int, Field(ge=0, le=86400)] = Field(
        default=60, description="The least time between two resyncs of one symbol."
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
