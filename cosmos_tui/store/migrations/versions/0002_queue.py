"""Queue, batches, per-run GPU metrics, alerts, schedulers and prompt enhancement.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the queue's shared state, batches, alerts, scheduler heartbeats and run metrics."""
    op.create_table(
        "app_state",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "schedulers",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("hostname", sa.String(200), nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("heartbeat_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "batches",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("profile", sa.String(32), nullable=False),
        sa.Column("run_type", sa.String(16), nullable=False),
        sa.Column("host", sa.String(200)),
        sa.Column("gpus", sa.String(64)),
        sa.Column("container_id", sa.String(80)),
        sa.Column("manifest", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "run_alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("host", sa.String(200)),
        sa.Column("gpu_index", sa.Integer),
        sa.Column("value", sa.Float),
        sa.Column("threshold", sa.Float),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("raised_at", sa.DateTime, nullable=False),
        sa.Column("cleared_at", sa.DateTime),
    )
    op.create_index("ix_run_alerts_run_id", "run_alerts", ["run_id"])
    op.create_index("ix_run_alerts_raised_at", "run_alerts", ["raised_at"])
    op.add_column("runs", sa.Column("metrics", sa.Text))
    op.add_column("runs", sa.Column("result_prompt_id", sa.String(32)))
    op.add_column("runs", sa.Column("claimed_at", sa.DateTime))
    op.create_index("ix_runs_claimed_by", "runs", ["claimed_by"])


def downgrade() -> None:
    """Drop what the upgrade added."""
    op.drop_index("ix_runs_claimed_by", "runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("claimed_at")
        batch.drop_column("result_prompt_id")
        batch.drop_column("metrics")
    op.drop_table("run_alerts")
    op.drop_table("batches")
    op.drop_table("schedulers")
    op.drop_table("app_state")
