"""A cluster run's devices: the GPU indices Ray gave its entrypoint on the node.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``runs.devices``."""
    op.add_column("runs", sa.Column("devices", sa.String(64)))


def downgrade() -> None:
    """Drop ``runs.devices``."""
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("devices")
