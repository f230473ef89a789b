"""The first schema: prompts, their inputs, runs, the run timeline and text search.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create every table, index and the trigram full-text index of prompts."""
    op.create_table(
        "prompts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200)),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("negative_prompt", sa.Text),
        sa.Column("parent_id", sa.String(32), sa.ForeignKey("prompts.id", ondelete="SET NULL")),
        sa.Column("video_dir", sa.Text),
        sa.Column("parameters", sa.Text),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_prompts_parent_id", "prompts", ["parent_id"])
    op.create_index("ix_prompts_created_at", "prompts", ["created_at"])
    op.create_table(
        "prompt_inputs",
        sa.Column(
            "prompt_id",
            sa.String(32),
            sa.ForeignKey("prompts.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("role", sa.String(16), primary_key=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("prompt_id", sa.String(32), sa.ForeignKey("prompts.id", ondelete="CASCADE")),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("profile", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
        sa.Column("queue_seq", sa.Integer, nullable=False, server_default="0"),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("host", sa.String(200)),
        sa.Column("gpus", sa.String(64)),
        sa.Column("container_id", sa.String(80)),
        sa.Column("batch_id", sa.String(32)),
        sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
        sa.Column("exit_code", sa.Integer),
        sa.Column("failure_kind", sa.String(32)),
        sa.Column("failure_message", sa.Text),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("started_at", sa.DateTime),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("log_path", sa.Text),
        sa.Column("outputs", sa.Text),
        sa.Column("rating", sa.Integer),
        sa.Column("progress_phase", sa.String(64)),
        sa.Column("progress_percent", sa.Float),
        sa.Column("eta_seconds", sa.Float),
        sa.Column("source_run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="SET NULL")),
        sa.Column("spec", sa.Text),
        sa.Column("claimed_by", sa.String(64)),
    )
    for column in (
        "prompt_id",
        "type",
        "host",
        "batch_id",
        "rating",
        "source_run_id",
        "created_at",
    ):
        op.create_index(f"ix_runs_{column}", "runs", [column])
    op.create_index("ix_runs_state_created", "runs", ["state", "created_at"])
    op.create_index("ix_runs_queue", "runs", ["state", "priority", "queue_seq"])
    op.create_table(
        "run_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("from_state", sa.String(16)),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
    )
    op.create_index("ix_run_events_run_id", "run_events", ["run_id"])
    op.execute(
        "CREATE VIRTUAL TABLE prompts_fts USING fts5("
        "name, text, content='prompts', content_rowid='rowid', tokenize='trigram')"
    )
    op.execute(
        "CREATE TRIGGER prompts_fts_ai AFTER INSERT ON prompts BEGIN "
        "INSERT INTO prompts_fts(rowid, name, text) VALUES (new.rowid, new.name, new.text); END"
    )
    op.execute(
        "CREATE TRIGGER prompts_fts_ad AFTER DELETE ON prompts BEGIN "
        "INSERT INTO prompts_fts(prompts_fts, rowid, name, text) "
        "VALUES ('delete', old.rowid, old.name, old.text); END"
    )
    op.execute(
        "CREATE TRIGGER prompts_fts_au AFTER UPDATE ON prompts BEGIN "
        "INSERT INTO prompts_fts(prompts_fts, rowid, name, text) "
        "VALUES ('delete', old.rowid, old.name, old.text); "
        "INSERT INTO prompts_fts(rowid, name, text) VALUES (new.rowid, new.name, new.text); END"
    )


def downgrade() -> None:
    """Drop everything the upgrade created."""
    for trigger in ("prompts_fts_ai", "prompts_fts_ad", "prompts_fts_au"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TABLE IF EXISTS prompts_fts")
    op.drop_table("run_events")
    op.drop_table("runs")
    op.drop_table("prompt_inputs")
    op.drop_table("prompts")
