"""A run's target: the host or cluster it is pinned to (None: anywhere).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``runs.target``."""
    op.add_column("runs", sa.Column("target", sa.String(200)))


def downgrade() -> None:
    """Drop ``runs.target``."""
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("target")
