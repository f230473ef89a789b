"""SQLAlchemy 2.0 typed models. The schema itself is created by Alembic migrations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns timezone-aware UTC datetimes."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Convert aware datetimes to naive UTC for storage."""
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Attach UTC to stored values."""
        return value.replace(tzinfo=UTC) if value is not None else None


class Base(DeclarativeBase):
    """Declarative base of every table."""


class PromptRow(Base):
    """A prompt and its text."""

    __tablename__ = "prompts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    negative_prompt: Mapped[str | None] = mapped_column(Text)
    parent_id: Mapped[str | None] = mapped_column(
        ForeignKey("prompts.id", ondelete="SET NULL"), index=True
    )
    video_dir: Mapped[str | None] = mapped_column(Text)
    parameters: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class PromptInputRow(Base):
    """One input video of a prompt (color or a control)."""

    __tablename__ = "prompt_inputs"

    prompt_id: Mapped[str] = mapped_column(
        ForeignKey("prompts.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(16), primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)


class RunRow(Base):
    """A run: what was asked, where it ran and how it ended."""

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_state_created", "state", "created_at"),
        Index("ix_runs_queue", "state", "priority", "queue_seq"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    prompt_id: Mapped[str | None] = mapped_column(
        ForeignKey("prompts.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[str] = mapped_column(String(16), index=True)
    profile: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    queue_seq: Mapped[int] = mapped_column(Integer, default=0)
    params: Mapped[str] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(200), index=True)
    gpus: Mapped[str | None] = mapped_column(String(64))
    container_id: Mapped[str | None] = mapped_column(String(80))
    batch_id: Mapped[str | None] = mapped_column(String(32), index=True)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    failure_kind: Mapped[str | None] = mapped_column(String(32))
    failure_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    log_path: Mapped[str | None] = mapped_column(Text)
    outputs: Mapped[str | None] = mapped_column(Text)
    rating: Mapped[int | None] = mapped_column(Integer, index=True)
    progress_phase: Mapped[str | None] = mapped_column(String(64))
    progress_percent: Mapped[float | None]
    eta_seconds: Mapped[float | None]
    source_run_id: Mapped[str | None] = mapped_column(
        ForeignKey("runs.id", ondelete="SET NULL"), index=True
    )
    spec: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(64), index=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    metrics: Mapped[str | None] = mapped_column(Text)
    result_prompt_id: Mapped[str | None] = mapped_column(String(32))
    target: Mapped[str | None] = mapped_column(String(200))
    devices: Mapped[str | None] = mapped_column(String(64))


class RunEventRow(Base):
    """One state change of a run."""

    __tablename__ = "run_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")


class AppStateRow(Base):
    """A shared setting that every process sees (the queue's paused flag)."""

    __tablename__ = "app_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SchedulerRow(Base):
    """A live scheduler process and its last heartbeat."""

    __tablename__ = "schedulers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    pid: Mapped[int] = mapped_column(Integer)
    hostname: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BatchRow(Base):
    """Runs that share one container: where it runs and which JSONL line is which run."""

    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    profile: Mapped[str] = mapped_column(String(32))
    run_type: Mapped[str] = mapped_column(String(16))
    host: Mapped[str | None] = mapped_column(String(200))
    gpus: Mapped[str | None] = mapped_column(String(64))
    container_id: Mapped[str | None] = mapped_column(String(80))
    manifest: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RunAlertRow(Base):
    """An alert raised on a run's GPUs or host."""

    __tablename__ = "run_alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    host: Mapped[str | None] = mapped_column(String(200))
    gpu_index: Mapped[int | None] = mapped_column(Integer)
    value: Mapped[float | None]
    threshold: Mapped[float | None]
    message: Mapped[str] = mapped_column(Text)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
