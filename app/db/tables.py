"""Table definitions. Money and quantities are NUMERIC; timestamps are timestamptz, suffixed _at.

One module on purpose, though past 400 lines: it is the whole schema as one MetaData, the one
alembic's autogenerate compares with the database (migrations/env.py) and the one a reader
checks a migration against. Its length is declarations and the reasons for their constraints
and indexes; the SQL that uses them lives in app/db/repositories.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


ORDER_STATUSES = (
    # Committed, no executor report yet. Shown as "dispatched" once its fill is marked
    # (leader_fill.dispatched_at): the outbox is the fills not yet marked.
    "pending",
    "dispatched",  # allowed so that stored rows carrying it stay valid; derived, see above
    "skipped",
    "accepted",
    "partially_filled",
    "filled",
    "rejected",
    "expired",
)
_ORDER_STATUSES = ", ".join(f"'{s}'" for s in ORDER_STATUSES)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        Decimal: Numeric(),
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSONB(),
    }


class Leader(Base):
    __tablename__ = "leader"
    __table_args__ = (CheckConstraint("status IN ('active', 'paused')", name="status_known"),)

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    name: Mapped[str] = mapped_column(String(100))
    feed_kind: Mapped[str] = mapped_column(String(32))
    feed_url: Mapped[str | None] = mapped_column(Text)
    # Venue feeds: what is not secret (base URLs, address, categories), readable by the API...
    feed_config: Mapped[dict[str, Any] | None]
    # ...and the exchange credentials, only ever stored encrypted (app.security.crypto).
    feed_secret: Mapped[str | None] = mapped_column(Text)
    # A paused leader keeps its subscriptions but its listener stops.
    status: Mapped[str] = mapped_column(String(16), server_default=text("'active'"))
    # Venue feeds never backfill before this: fills up to here are in the starting positions
    # read from the venue (NULL: the leader's creation).
    backfill_floor_at: Mapped[datetime | None]
    push_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # One more for every write that moves the leader's or its subscriptions' positions: the
    # fill statement records only against the sequence its plans were made from.
    book_seq: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # Soft delete: fills and orders keep pointing at the leader they came from.
    deleted_at: Mapped[datetime | None]


class Follower(Base):
    __tablename__ = "follower"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    name: Mapped[str] = mapped_column(String(100))
    # NULL while the key is revoked: no key works until the next rotation.
    api_key_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # When this follower's streams are next due for trimming: claimed by one instance a round.
    trim_due_at: Mapped[datetime | None]


class EquitySnapshot(Base):
    """Account equity over time. Other systems may insert rows directly; the newest wins."""

    __tablename__ = "equity_snapshot"
    __table_args__ = (
        CheckConstraint("(leader_id IS NULL) <> (follower_id IS NULL)", name="exactly_one_account"),
        CheckConstraint("equity > 0", name="equity_positive"),
        Index("ix_equity_snapshot_leader_newest", "leader_id", text("as_of DESC"), text("id DESC")),
        Index(
            "ix_equity_snapshot_follower_newest", "follower_id", text("as_of DESC"), text("id DESC")
        ),
        # The equity cache's periodic resync reads only recent rows; append-only, so BRIN.
        Index("ix_equity_snapshot_created", "created_at", postgresql_using="brin"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    leader_id: Mapped[UUID | None] = mapped_column(ForeignKey("leader.id"))
    follower_id: Mapped[UUID | None] = mapped_column(ForeignKey("follower.id"))
    equity: Mapped[Decimal]
    as_of: Mapped[datetime] = mapped_column(server_default=func.now())
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Instrument(Base):
    __tablename__ = "instrument"
    __table_args__ = (
        CheckConstraint("qty_step > 0", name="qty_step_positive"),
        CheckConstraint("min_qty >= 0", name="min_qty_nonnegative"),
        CheckConstraint("min_notional >= 0", name="min_notional_nonnegative"),
        CheckConstraint("price_step > 0", name="price_step_positive"),
    )

    symbol: Mapped[str] = mapped_column(String(48), primary_key=True)
    qty_step: Mapped[Decimal]
    min_qty: Mapped[Decimal]
    min_notional: Mapped[Decimal]
    price_step: Mapped[Decimal | None]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class VenueInstrument(Base):
    """A venue's rules for one of its perpetuals, in base units (app.domain.instruments).

    Loaded from the venue's public list (``source`` 'venue'), or set by an operator
    (``source`` 'operator'), which the next load leaves alone.
    """

    __tablename__ = "venue_instrument"
    __table_args__ = (
        CheckConstraint("qty_step > 0", name="qty_step_positive"),
        CheckConstraint("contract_size > 0", name="contract_size_positive"),
        CheckConstraint("min_qty >= 0", name="min_qty_nonnegative"),
        CheckConstraint("min_notional >= 0", name="min_notional_nonnegative"),
        CheckConstraint("source IN ('venue', 'operator')", name="source_known"),
        Index("ix_venue_instrument_venue_base", "venue", "base"),
    )

    venue: Mapped[str] = mapped_column(String(32), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(48), primary_key=True)
    base: Mapped[str] = mapped_column(String(32))
    quote: Mapped[str] = mapped_column(String(16))
    qty_step: Mapped[Decimal]
    min_qty: Mapped[Decimal]
    max_qty: Mapped[Decimal | None]
    market_qty_step: Mapped[Decimal | None]
    market_min_qty: Mapped[Decimal | None]
    market_max_qty: Mapped[Decimal | None]
    min_notional: Mapped[Decimal]
    price_step: Mapped[Decimal | None]
    price_sig_figs: Mapped[int | None] = mapped_column(SmallInteger)
    price_max_decimals: Mapped[int | None] = mapped_column(SmallInteger)
    contract_size: Mapped[Decimal] = mapped_column(server_default=text("1"))
    source: Mapped[str] = mapped_column(String(8), server_default=text("'venue'"))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class Subscription(Base):
    __tablename__ = "subscription"
    __table_args__ = (
        CheckConstraint("multiplier > 0", name="multiplier_positive"),
        CheckConstraint(
            "status IN ('active', 'paused', 'close_only', 'deleted')", name="status_known"
        ),
        # One live subscription per (follower, leader); deleted ones stay for order history.
        Index(
            "uq_subscription_follower_leader_live",
            "follower_id",
            "leader_id",
            unique=True,
            postgresql_where=text("status <> 'deleted'"),
        ),
        Index(
            "ix_subscription_leader_live",
            "leader_id",
            postgresql_where=text("status IN ('active', 'close_only')"),
        ),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    follower_id: Mapped[UUID] = mapped_column(ForeignKey("follower.id"))
    leader_id: Mapped[UUID] = mapped_column(ForeignKey("leader.id"))
    multiplier: Mapped[Decimal]
    status: Mapped[str] = mapped_column(String(16))
    status_reason: Mapped[str | None] = mapped_column(String(200))
    # Sizing mode and controls (app.api.schemas.SizingIn), validated at the API.
    sizing: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class LeaderPosition(Base):
    """The leader's position per symbol (signed), from its fills."""

    __tablename__ = "leader_position"
    # Room for the update every fill makes, on the row's own page (migration 0014).
    __table_args__ = ({"postgresql_with": {"fillfactor": 50}},)

    leader_id: Mapped[UUID] = mapped_column(ForeignKey("leader.id"), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(48), primary_key=True)
    qty: Mapped[Decimal]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class SubscriptionPosition(Base):
    """The position sizing assumes a subscription holds (signed, follower symbol): moved by the
    orders it sends, corrected by executor reports of what did not fill.

    A read-only VIEW (migration 0023) of the two tables below; written only through
    app.db.repositories.subscription_positions."""

    __tablename__ = "subscription_position"
    __table_args__ = ({"info": {"is_view": True}},)

    # No foreign key (see follower_order): subscriptions are never deleted (append-only).
    subscription_id: Mapped[UUID] = mapped_column(primary_key=True)
    symbol: Mapped[str] = mapped_column(String(48), primary_key=True)
    qty: Mapped[Decimal]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class SubscriptionPositionVector(Base):
    """Per (leader, follower symbol): the subscriptions' positions moved by its fills, ids and
    quantities in the same order (app.db.repositories.subscription_positions)."""

    __tablename__ = "subscription_position_vector"
    __table_args__ = (
        CheckConstraint("cardinality(subscription_ids) = cardinality(qtys)", name="aligned"),
        {"postgresql_with": {"fillfactor": 50}},
    )

    leader_id: Mapped[UUID] = mapped_column(ForeignKey("leader.id"), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(48), primary_key=True)
    subscription_ids: Mapped[list[UUID]] = mapped_column(ARRAY(Uuid()))
    qtys: Mapped[list[Decimal]] = mapped_column(ARRAY(Numeric()))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class SubscriptionPositionCorrection(Base):
    """Per (subscription, follower symbol): what executor reports and drift corrections moved
    its position by, on top of its vector's quantity."""

    __tablename__ = "subscription_position_correction"
    __table_args__ = ({"postgresql_with": {"fillfactor": 50}},)

    subscription_id: Mapped[UUID] = mapped_column(primary_key=True)
    symbol: Mapped[str] = mapped_column(String(48), primary_key=True)
    qty: Mapped[Decimal]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class LeaderFill(Base):
    """Every leader fill, recorded once: (leader_id, fill_id) is unique."""

    __tablename__ = "leader_fill"
    __table_args__ = (
        UniqueConstraint("leader_id", "fill_id"),
        CheckConstraint("qty > 0", name="qty_positive"),
        CheckConstraint("price > 0", name="price_positive"),
        CheckConstraint("side IN ('buy', 'sell')", name="side_known"),
        CheckConstraint("kind IN ('trade', 'sync')", name="kind_known"),
        Index(
            "ix_leader_fill_leader_event",
            "leader_id",
            text("event_at DESC"),
            postgresql_where=text("kind = 'trade'"),
        ),
        # The relay's work list: committed, but its orders not yet confirmed in Redis.
        Index(
            "ix_leader_fill_undispatched",
            "created_at",
            postgresql_where=text("dispatched_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    leader_id: Mapped[UUID] = mapped_column(ForeignKey("leader.id"))
    fill_id: Mapped[str] = mapped_column(String(128))
    # "trade": the leader's execution. "sync": a follower brought to the leader's open
    # positions on subscribing (copy_open_positions); the leader's positions do not move.
    kind: Mapped[str] = mapped_column(String(8), server_default=text("'trade'"))
    symbol: Mapped[str] = mapped_column(String(48))
    side: Mapped[str] = mapped_column(String(4))
    qty: Mapped[Decimal]
    price: Mapped[Decimal]
    event_at: Mapped[datetime]
    received_at: Mapped[datetime]
    # What venues report besides the trade: kept for audit, not used by sizing.
    fee: Mapped[Decimal | None]
    fee_asset: Mapped[str | None] = mapped_column(String(16))
    reduce_only: Mapped[bool | None]
    liquidation: Mapped[bool] = mapped_column(server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # Every order of this fill is in its stream (set at insert when there is none to send).
    # Per fill, not per order: marking 10,000 order rows rewrote each of them.
    dispatched_at: Mapped[datetime | None]
    # What every order of the fill shares, stored once here rather than on each order row
    # (app.executors.protocol.messages.sizing_document rebuilds its explanation from both).
    # Executors drop an order they receive after valid_until and report it expired.
    valid_until: Mapped[datetime | None]
    leader_equity: Mapped[Decimal | None]
    leader_equity_snapshot_id: Mapped[int | None] = mapped_column(BigInteger)
    # The leader's position in the fill's symbol before and after it, as sizing saw it.
    leader_position_before: Mapped[Decimal | None]
    leader_position_after: Mapped[Decimal | None]


class FollowerOrder(Base):
    """Every order sized for a follower, dispatched or skipped: the outbox and the history."""

    __tablename__ = "follower_order"
    __table_args__ = (
        CheckConstraint(f"status IN ({_ORDER_STATUSES})", name="status_known"),
        CheckConstraint("qty >= 0", name="qty_nonnegative"),
        CheckConstraint("filled_qty >= 0 AND filled_qty <= qty", name="filled_within_qty"),
        Index("ix_follower_order_follower_newest", "follower_id", text("created_at DESC"), "id"),
        Index("ix_follower_order_fill_pk", "fill_pk"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # What an order came from: its fill, subscription and equity snapshot. No foreign keys:
    # each would be a lookup and a row lock (itself a WAL record) per order on the fill path
    # (docs/measurements.md). Those tables are append-only instead (a trigger refuses DELETE,
    # see migration 0012), and the ids are the ones the same statement or the loaded book holds.
    # What every order of a fill shares (its leader, valid_until, the leader's side of the
    # explanation) is on the fill's row, once (docs/measurements.md, "lean order rows").
    fill_pk: Mapped[int] = mapped_column(BigInteger)
    leg: Mapped[int] = mapped_column(SmallInteger, default=0)
    # Denormalised from the subscription, for the per-follower history index.
    follower_id: Mapped[UUID]
    subscription_id: Mapped[UUID]
    follower_equity_snapshot_id: Mapped[int | None] = mapped_column(BigInteger)
    symbol: Mapped[str] = mapped_column(String(48))
    side: Mapped[str] = mapped_column(String(4))
    qty: Mapped[Decimal]
    type: Mapped[str] = mapped_column(String(16))
    reduce_only: Mapped[bool]
    limit_price: Mapped[Decimal | None]
    time_in_force: Mapped[str | None] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    skip_reason: Mapped[str | None] = mapped_column(String(32))
    # Per follower, for the per-follower history index and its keyset pages (dashboard).
    created_at: Mapped[datetime]
    # The explanation's per-order part (the order message's "sizing", with the fill's part).
    mode: Mapped[str] = mapped_column(String(16))
    follower_equity: Mapped[Decimal | None]
    ratio: Mapped[Decimal | None]
    multiplier: Mapped[Decimal]
    effect: Mapped[str] = mapped_column(String(16))
    follower_position_before: Mapped[Decimal]
    follower_position_after: Mapped[Decimal]
    target: Mapped[Decimal | None]
    raw_qty: Mapped[Decimal | None]
    residue: Mapped[Decimal]
    # The caps that cut the opening leg, comma-separated in the order applied; NULL: none.
    clamps: Mapped[str | None] = mapped_column(Text)
    qty_step: Mapped[Decimal]
    # The plan's skip reason on an order that was sent: a later leg of it was held back.
    held_reason: Mapped[str | None] = mapped_column(String(32))
    # NULL: the fill's (leader_fill.leader_position_*); set only where this plan saw another.
    leader_position_before: Mapped[Decimal | None]
    leader_position_after: Mapped[Decimal | None]
    # Cumulative, from executor reports.
    filled_qty: Mapped[Decimal] = mapped_column(server_default=text("0"))
    avg_price: Mapped[Decimal | None]
    status_reason: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class OrderEvent(Base):
    """Each status change of an order, in order: what the history and the feed show."""

    __tablename__ = "order_event"
    __table_args__ = (Index("ix_order_event_order", "order_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(32), ForeignKey("follower_order.id"))
    status: Mapped[str] = mapped_column(String(16))
    filled_qty: Mapped[Decimal]
    avg_price: Mapped[Decimal | None]
    reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class FollowerPosition(Base):
    """A follower's actual position per symbol, as its executor reports fills (signed qty)."""

    __tablename__ = "follower_position"

    follower_id: Mapped[UUID] = mapped_column(ForeignKey("follower.id"), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(48), primary_key=True)
    qty: Mapped[Decimal]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class QuarantinedFill(Base):
    """A fill from a leader feed that was too absurd to size: kept for inspection, never sized."""

    __tablename__ = "quarantined_fill"
    __table_args__ = (Index("ix_quarantined_fill_leader", "leader_id", "received_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    leader_id: Mapped[UUID] = mapped_column(ForeignKey("leader.id"))
    # The frame as received, truncated (app.ingest.handler.MAX_RAW_CHARS).
    raw: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime]


class LeaderMark(Base):
    """The venue's mark (or entry) price of a leader position, read with its positions: what
    copy_open_positions sizes at before the leader's first fill gives a price."""

    __tablename__ = "leader_mark"
    __table_args__ = (CheckConstraint("price > 0", name="price_positive"),)

    leader_id: Mapped[UUID] = mapped_column(ForeignKey("leader.id"), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(48), primary_key=True)
    price: Mapped[Decimal]
    as_of: Mapped[datetime]


class PositionCopy(Base):
    """A copy_open_positions job: written with its subscription, run by the outbox relay until
    done. ``report`` lists the symbols synced and, for the others, why not."""

    __tablename__ = "position_copy"
    __table_args__ = (
        Index("ix_position_copy_pending", "created_at", postgresql_where=text("done_at IS NULL")),
    )

    subscription_id: Mapped[UUID] = mapped_column(primary_key=True)
    leader_id: Mapped[UUID]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    done_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(String(300))
    report: Mapped[dict[str, Any] | None]


class ServiceInstance(Base):
    """A running instance, alive while its heartbeat is fresh: how leases are shared fairly."""

    __tablename__ = "service_instance"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(server_default=func.now())
    heartbeat_at: Mapped[datetime]


class FeedLease(Base):
    """Which instance runs a leader's listener, until ``expires_at`` unless renewed."""

    __tablename__ = "feed_lease"
    __table_args__ = (Index("ix_feed_lease_owner", "owner"),)

    leader_id: Mapped[UUID] = mapped_column(
        ForeignKey("leader.id", ondelete="CASCADE"), primary_key=True
    )
    owner: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]
    acquired_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # The owner's listener state, written at each renewal: any instance can report it.
    state: Mapped[dict[str, Any] | None]


ACCOUNT_STATUSES = ("connecting", "ready", "error")


class FollowerAccount(Base):
    """A follower's exchange account: what the execute role trades, and who runs it (lease)."""

    __tablename__ = "follower_account"
    __table_args__ = (
        CheckConstraint(
            "status IN ({})".format(", ".join(f"'{s}'" for s in ACCOUNT_STATUSES)),
            name="status_known",
        ),
        Index("ix_follower_account_owner", "owner"),
    )

    follower_id: Mapped[UUID] = mapped_column(
        ForeignKey("follower.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    # What is not secret (base URLs, td_mode, address): shown by the API...
    config: Mapped[dict[str, Any]]
    # ...and the keys, only ever stored encrypted (app.security.crypto).
    secret: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), server_default=text("'connecting'"))
    last_error: Mapped[str | None] = mapped_column(String(300))
    # The margin balance last read from the venue (also stored as an equity snapshot).
    equity: Mapped[Decimal | None]
    equity_at: Mapped[datetime | None]
    positions_at: Mapped[datetime | None]
    # The instance whose executor trades this account, until lease_expires_at unless renewed.
    owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class VenuePosition(Base):
    """A follower's position per symbol as its venue last reported it (signed, base units)."""

    __tablename__ = "venue_position"

    follower_id: Mapped[UUID] = mapped_column(
        ForeignKey("follower.id", ondelete="CASCADE"), primary_key=True
    )
    symbol: Mapped[str] = mapped_column(String(48), primary_key=True)
    qty: Mapped[Decimal]
    read_at: Mapped[datetime]


class FollowerDrift(Base):
    """Per follower and symbol: the position it holds on its own (accepted under the ``adopt``
    drift mode, never traded by sizing), the drift last measured against its target, and when
    a resync was last sent (``drift_min_interval_s`` is kept here, for every instance)."""

    __tablename__ = "follower_drift"

    follower_id: Mapped[UUID] = mapped_column(
        ForeignKey("follower.id", ondelete="CASCADE"), primary_key=True
    )
    symbol: Mapped[str] = mapped_column(String(48), primary_key=True)
    adopted: Mapped[Decimal] = mapped_column(server_default=text("0"))
    drift: Mapped[Decimal | None]  # actual - (target + adopted), base units
    fraction: Mapped[Decimal | None]  # |drift| x price / equity
    flagged: Mapped[bool] = mapped_column(server_default=text("false"))
    checked_at: Mapped[datetime | None]
    resynced_at: Mapped[datetime | None]
