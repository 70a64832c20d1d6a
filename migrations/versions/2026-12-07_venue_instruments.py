"""Each venue's instrument rules, per (venue, symbol), loaded from its public list.

Sizing caches instrument rules in memory: the change trigger of revision 0003 tells every
instance when a row changes (a reload writes only the rows whose rules changed).

Revision ID: 0020
Revises: 0015
Create Date: 2026-12-07 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "venue_instrument",
        sa.Column("venue", sa.String(length=32), nullable=False),
        sa.Column("symbol", sa.String(length=48), nullable=False),
        sa.Column("base", sa.String(length=32), nullable=False),
        sa.Column("quote", sa.String(length=16), nullable=False),
        sa.Column("qty_step", sa.Numeric(), nullable=False),
        sa.Column("min_qty", sa.Numeric(), nullable=False),
        sa.Column("max_qty", sa.Numeric(), nullable=True),
        sa.Column("market_qty_step", sa.Numeric(), nullable=True),
        sa.Column("market_min_qty", sa.Numeric(), nullable=True),
        sa.Column("market_max_qty", sa.Numeric(), nullable=True),
        sa.Column("min_notional", sa.Numeric(), nullable=False),
        sa.Column("price_step", sa.Numeric(), nullable=True),
        sa.Column("price_sig_figs", sa.SmallInteger(), nullable=True),
        sa.Column("price_max_decimals", sa.SmallInteger(), nullable=True),
        sa.Column("contract_size", sa.Numeric(), server_default=sa.text("1"), nullable=False),
        sa.Column("source", sa.String(length=8), server_default=sa.text("'venue'"), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("qty_step > 0", name=op.f("ck_venue_instrument_qty_step_positive")),
        sa.CheckConstraint(
            "contract_size > 0", name=op.f("ck_venue_instrument_contract_size_positive")
        ),
        sa.CheckConstraint("min_qty >= 0", name=op.f("ck_venue_instrument_min_qty_nonnegative")),
        sa.CheckConstraint(
            "min_notional >= 0", name=op.f("ck_venue_instrument_min_notional_nonnegative")
        ),
        sa.CheckConstraint(
            "source IN ('venue', 'operator')", name=op.f("ck_venue_instrument_source_known")
        ),
        sa.PrimaryKeyConstraint("venue", "symbol", name=op.f("pk_venue_instrument")),
    )
    op.create_index("ix_venue_instrument_venue_base", "venue_instrument", ["venue", "base"])
    op.execute(
        "CREATE TRIGGER venue_instrument_changes_notify AFTER INSERT OR UPDATE OR DELETE "
        "ON venue_instrument FOR EACH ROW EXECUTE FUNCTION copytrade_changes_notify()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS venue_instrument_changes_notify ON venue_instrument")
    op.drop_index("ix_venue_instrument_venue_base", table_name="venue_instrument")
    op.drop_table("venue_instrument")
