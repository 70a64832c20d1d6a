"""Room in the position tables' pages for their updates: fillfactor 50.

Every fill updates the position of each subscription it moves (10,000 rows for a fill with
10,000 followers). With full pages each update wrote a new index entry as well (7 % of them
were HOT on the benchmark database); with free room on the page an update stays on it and
leaves the primary key alone. Measured on a 10,000-row upsert: 120-150 ms -> 79-87 ms.
Existing pages get the room as they are rewritten (VACUUM FULL, or as rows move).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-24 08:15:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("subscription_position", "leader_position")


def upgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} SET (fillfactor = 50)")


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
