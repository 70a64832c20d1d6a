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
    field_validator,
)

from app.domain.decimals import fmt
from app.ingest.frames import MAX_CLOCK_SKEW, SYMBOL_PATTERN

# Bounded so that sizing products stay exact (see app.domain.decimals.SIZING_PRECISION): at most
# 30 digits in all, wherever the point is (decimal_places=18 would cap the whole part at 12).
_DecimalIn = Annotated[Decimal, Field(max_digits=30, allow_inf_nan=False)]
Positive = Annotated[_DecimalIn, Field(gt=0)]
NonNegative = Annotated[_DecimalIn, Field(ge=0)]
DecimalStr = Annotated[Decimal, PlainSerializer(fmt, return_type=str, when_used="json")]
Name = Annotated[str, Field(min_length=1, max_length=100)]
Symbol = Annotated[str, Field(pattern=SYMBOL_PATTERN)]
WsUrl = Annotated[AnyUrl, UrlConstraints(allowed_schemes=["ws", "wss"], max_length=2000)]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PushFeed(Request):
    kind: Literal["push"]


class GenericFeed(Request):
    kind: Literal["generic"]
    url: WsUrl


class LeaderCreate(Request):
    name: Name
    feed: PushFeed | GenericFeed = Field(discriminator="kind")


class FeedOut(BaseModel):
    kind: str
    url: str | None = None


class LeaderOut(BaseModel):
    id: UUID
    name: str
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


class InstrumentIn(Request):
    qty_step: Positive
    min_qty: NonNegative = Decimal(0)
    min_notional: NonNegative = Decimal(0)


class InstrumentOut(BaseModel):
    symbol: str
    qty_step: DecimalStr
    min_qty: DecimalStr
    min_notional: DecimalStr


class FollowerCreate(Request):
    name: Name


class FollowerOut(BaseModel):
    id: UUID
    name: str
    created_at: datetime


class FollowerCreated(FollowerOut):
    api_key: str = Field(description="The follower's API key. Shown only once.")


class SubscriptionCreate(Request):
    leader_id: UUID
    multiplier: Positive = Decimal(1)


class SubscriptionPatch(Request):
    status: Literal["active", "paused"] | None = None
    multiplier: Positive | None = None


class SubscriptionOut(BaseModel):
    id: UUID
    leader_id: UUID
    follower_id: UUID
    multiplier: DecimalStr
    status: str
    created_at: datetime


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
    status: str
    skip_reason: str | None
    filled_qty: DecimalStr
    avg_price: DecimalStr | None
    created_at: datetime
    dispatched_at: datetime | None
    valid_until: datetime
    sizing: dict[str, Any]


class OrderEventOut(BaseModel):
    status: str
    filled_qty: DecimalStr
    avg_price: DecimalStr | None
    reason: str | None
    at: datetime


class FillOut(BaseModel):
    fill_id: str
    symbol: str
    side: str
    qty: DecimalStr
    price: DecimalStr
    event_at: datetime
    received_at: datetime


class OrderDetail(OrderOut):
    fill: FillOut
    events: list[OrderEventOut]


class PositionOut(BaseModel):
    symbol: str
    qty: DecimalStr
    updated_at: datetime
