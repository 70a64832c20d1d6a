"""Key rotation: a follower's API key may be revoked (NULL) until it is rotated again.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column("follower", "api_key_hash", existing_type=sa.String(length=64), nullable=True)


def downgrade() -> None:
    # A revoked follower gets an unusable placeholder: 64 characters no SHA-256 hex digest has.
    op.execute(
        "UPDATE follower SET api_key_hash = rpad('revoked:' || replace(id::text, '-', ''), 64, "
        "'x') WHERE api_key_hash IS NULL"
    )
    op.alter_column("follower", "api_key_hash", existing_type=sa.String(length=64), nullable=False)
