"""The async store: every read and write of prompts, runs and the run timeline.

Each public method is one transaction. Writes start with ``BEGIN IMMEDIATE`` so that
several processes (the TUI and CLIs in other terminals) never fail half-way, and state
changes are conditional UPDATEs so two writers can never both move one run.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import URL, Select, Table, delete, event, func, insert, or_, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from cosmos_tui.domain import (
    GenerationParams,
    InputFile,
    Page,
    Prompt,
    Run,
    RunState,
    RunType,
    check_transition,
)
from cosmos_tui.errors import (
    AmbiguousId,
    ClaimedElsewhere,
    InvalidTransition,
    NotFound,
    StoreError,
    ValidationError,
)
from cosmos_tui.ids import PROMPT_PREFIX, RUN_PREFIX, IdSource, check_id_text, kind_of
from cosmos_tui.store.convert import fts_query, prompt_from_row, run_from_row
from cosmos_tui.store.migrate import describe_sqlite_error, ensure_schema
from cosmos_tui.store.tables import PromptInputRow, PromptRow, RunEventRow, RunRow
from cosmos_tui.store.transactions import (
    RollbackOnClose,
    begin_immediate_hook,
    keep_connection_on_exit_exception,
    rowcount,
    run_to_completion,
    transaction,
)

Clock = Callable[[], datetime]

# Fields that callers may set together with a state change or on their own.
RUN_FIELDS = frozenset(
    {
        "host", "gpus", "container_id", "batch_id", "attempt", "exit_code", "failure_kind",
        "failure_message", "started_at", "finished_at", "log_path", "outputs",
        "progress_phase", "progress_percent", "eta_seconds", "spec", "claimed_by", "priority",
        "claimed_at", "metrics", "result_prompt_id", "target", "devices",
    }
)  # fmt: skip


def utc_now() -> datetime:
    """Return the current time in UTC (the default clock)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class RunFilter:
    """What ``list_runs`` returns; every field narrows the result."""

    states: frozenset[RunState] = frozenset()
    type: RunType | None = None
    prompt_id: str | None = None
    min_rating: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None
    host: str | None = None
    batch_id: str | None = None


@dataclass(frozen=True)
class PromptFilter:
    """What ``list_prompts`` returns."""

    text: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    parent_id: str | None = None


PROMPT_SORTS = {"created": PromptRow.created_at, "name": PromptRow.name, "text": PromptRow.text}
RUN_SORTS = {
    "created": RunRow.created_at,
    "state": RunRow.state,
    "rating": RunRow.rating,
    "updated": RunRow.updated_at,
}


class Store:
    """Async access to the SQLite database.

    Args:
        engine: An async engine created by :meth:`open`.
        ids: Source of new ids.
        clock: Source of the current time.
    """

    def __init__(self, engine: AsyncEngine, ids: IdSource, clock: Clock) -> None:
        self._engine = engine
        self.db_path = Path(engine.url.database or "")
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self.ids = ids
        self.clock = clock

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        db_path: Path,
        ids: IdSource | None = None,
        clock: Clock = utc_now,
        busy_timeout_ms: int = 10_000,
    ) -> AsyncIterator[Store]:
        """Migrate ``db_path`` if needed and yield a store; the engine is closed on exit.

        Raises:
            StoreError: For a foreign, corrupt or newer database.
        """
        await asyncio.to_thread(ensure_schema, db_path)
        engine = create_async_engine(
            URL.create("sqlite+aiosqlite", database=str(db_path)),
            connect_args={"factory": RollbackOnClose},
        )
        event.listen(engine.sync_engine, "handle_error", keep_connection_on_exit_exception)

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            for pragma in (
                "journal_mode=WAL",
                "synchronous=NORMAL",
                "foreign_keys=ON",
                f"busy_timeout={int(busy_timeout_ms)}",
            ):
                cursor.execute(f"PRAGMA {pragma}")
            cursor.close()

        # BEGIN IMMEDIATE in short attempts: a task waiting for the lock stays cancellable.
        event.listen(engine.sync_engine, "begin", begin_immediate_hook(busy_timeout_ms))

        try:
            yield cls(engine, ids or IdSource(), clock)
        finally:
            await run_to_completion(engine.dispose())

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """Yield a session inside one transaction, translating database errors.

        The transaction begins with ``BEGIN IMMEDIATE``, waiting up to the busy timeout
        for another process's write lock. It is committed or rolled back, and its
        connection returned, even when the task is cancelled inside it (see
        :mod:`cosmos_tui.store.transactions`); a cancel while waiting for the lock ends
        the wait within about 0.1 s.

        A cancel that arrives once COMMIT has been issued (the body is done) does not
        stop it: ``CancelledError`` is raised after the COMMIT has run, so a caller that
        sees ``CancelledError`` cannot tell whether the transaction was committed, and
        must treat its changes as possibly made. Claims cope: a claim committed for a
        scheduler that then stops is released by any scheduler once it is stale
        (:meth:`~cosmos_tui.store.queue_store.QueueStore.release_stale_claims`), and a
        run moved on to uploading without a driver is resumed by reconcile or, in a
        batch, requeued by the batch launcher's orphan sweep.

        Yields:
            The session, inside its transaction (committed on a normal exit).

        Raises:
            StoreError: When the database fails, the lock held by another process past
                the busy timeout included ("another cosmos process holds it").
            asyncio.CancelledError: When the task is cancelled; the transaction has then
                ended (rolled back, or committed if the cancel came during COMMIT).
        """
        try:
            async with transaction(self._sessions) as session:
                yield session
        except SQLAlchemyError as exc:
            raise StoreError(describe_sqlite_error(exc, self.db_path)) from exc

    # ids ---------------------------------------------------------------------------

    async def resolve_id(self, text_id: str, kind: str | None = None) -> str:
        """Return the full id that ``text_id`` (an id or a unique prefix) names.

        Args:
            text_id: What the user typed.
            kind: ``prompt`` or ``run`` to restrict the search.

        Raises:
            NotFound: When nothing matches. AmbiguousId: When several match.
        """
        cleaned = check_id_text(text_id)
        if kind_of(cleaned) == "batch":
            raise ValidationError(
                f"'{text_id}' is a batch id; batches are listed by 'cosmos queue', and this "
                "command takes a prompt (ps_) or run (rs_) id",
                field="id",
            )
        wanted = kind_of(cleaned) or kind
        if kind and kind_of(cleaned) and kind_of(cleaned) != kind:
            raise ValidationError(f"'{text_id}' is not a {kind} id", field="id")
        tables: list[Any] = []
        if wanted in (None, "prompt"):
            tables.append((PromptRow.id, PROMPT_PREFIX))
        if wanted in (None, "run"):
            tables.append((RunRow.id, RUN_PREFIX))
        matches: list[str] = []
        async with self.session() as session:
            for column, prefix in tables:
                pattern = cleaned if kind_of(cleaned) else prefix + cleaned
                rows = await session.scalars(
                    select(column)
                    .where(column.like(_escape_like(pattern) + "%", escape="\\"))
                    .limit(6)
                )
                matches.extend(rows)
        if not matches:
            listing = f"'cosmos list {wanted}s'" if wanted else "'cosmos list prompts|runs'"
            raise NotFound(f"no {wanted or 'prompt or run'} matches '{text_id}'; see {listing}")
        if len(matches) > 1 and cleaned not in matches:
            raise AmbiguousId(text_id, sorted(matches))
        return cleaned if cleaned in matches else matches[0]

    # prompts -------------------------------------------------------------------------

    async def add_prompt(
        self,
        text_value: str,
        inputs: Sequence[InputFile],
        name: str | None = None,
        negative_prompt: str | None = None,
        parent_id: str | None = None,
        video_dir: Path | None = None,
    ) -> Prompt:
        """Insert a prompt with its inputs in one transaction and return it."""
        prompt_id = self.ids.new(PROMPT_PREFIX)
        now = self.clock()
        async with self.session() as session:
            session.add(
                PromptRow(
                    id=prompt_id,
                    name=name,
                    text=text_value,
                    negative_prompt=negative_prompt,
                    parent_id=parent_id,
                    video_dir=str(video_dir) if video_dir else None,
                    created_at=now,
                )
            )
            await session.flush()
            session.add_all(
                PromptInputRow(
                    prompt_id=prompt_id,
                    role=item.role,
                    path=str(item.path),
                    sha256=item.sha256,
                    size=item.size,
                )
                for item in inputs
            )
        return await self.get_prompt(prompt_id)

    async def get_prompt(self, prompt_id: str) -> Prompt:
        """Return the prompt with this exact id.

        Raises:
            NotFound: When there is none.
        """
        async with self.session() as session:
            row = await session.get(PromptRow, prompt_id)
            if row is None:
                raise NotFound(f"no prompt {prompt_id}; see 'cosmos list prompts'")
            inputs = (
                await session.scalars(
                    select(PromptInputRow).where(PromptInputRow.prompt_id == prompt_id)
                )
            ).all()
            count, latest = await self._prompt_stats(session, [prompt_id])
        return prompt_from_row(row, inputs, count.get(prompt_id, 0), latest.get(prompt_id))

    async def list_prompts(
        self,
        where: PromptFilter = PromptFilter(),
        offset: int = 0,
        limit: int = 50,
        sort: str = "created",
        descending: bool = True,
    ) -> Page[Prompt]:
        """Return one page of prompts matching ``where``, newest first by default."""
        query = select(PromptRow)
        if where.text:
            query = query.where(_prompt_text_clause(where.text))
        if where.since:
            query = query.where(PromptRow.created_at >= where.since)
        if where.until:
            query = query.where(PromptRow.created_at < where.until)
        if where.parent_id:
            query = query.where(PromptRow.parent_id == where.parent_id)
        column = PROMPT_SORTS.get(sort, PromptRow.created_at)
        order = column.desc() if descending else column.asc()
        async with self.session() as session:
            total = await session.scalar(select(func.count()).select_from(query.subquery()))
            rows = (
                await session.scalars(
                    query.order_by(order, PromptRow.id).offset(offset).limit(limit)
                )
            ).all()
            ids = [r.id for r in rows]
            input_rows = (
                await session.scalars(
                    select(PromptInputRow).where(PromptInputRow.prompt_id.in_(ids))
                )
            ).all()
            count, latest = await self._prompt_stats(session, ids)
        by_prompt: dict[str, list[PromptInputRow]] = {}
        for item in input_rows:
            by_prompt.setdefault(item.prompt_id, []).append(item)
        items = tuple(
            prompt_from_row(r, by_prompt.get(r.id, []), count.get(r.id, 0), latest.get(r.id))
            for r in rows
        )
        return Page(items=items, total=total or 0, offset=offset, limit=limit)

    async def _prompt_stats(
        self, session: AsyncSession, ids: Sequence[str]
    ) -> tuple[dict[str, int], dict[str, str]]:
        if not ids:
            return {}, {}
        # runs.prompt_id is nullable, but the IN filter matches only the (non-null) ids asked for.
        counts = cast(
            "dict[str, int]",
            dict(
                (
                    await session.execute(
                        select(RunRow.prompt_id, func.count())
                        .where(RunRow.prompt_id.in_(ids))
                        .group_by(RunRow.prompt_id)
                    )
                ).all()
            ),
        )
        newest = (
            select(
                RunRow.prompt_id,
                RunRow.state,
                func.row_number()
                .over(
                    partition_by=RunRow.prompt_id,
                    order_by=(RunRow.created_at.desc(), RunRow.id.desc()),
                )
                .label("n"),
            )
            .where(RunRow.prompt_id.in_(ids))
            .subquery()
        )
        latest = dict(
            (
                await session.execute(
                    select(newest.c.prompt_id, newest.c.state).where(newest.c.n == 1)
                )
            ).all()
        )
        return counts, latest

    async def set_prompt_text(self, prompt_id: str, text_value: str) -> Prompt:
        """Replace a prompt's text (prompt enhancement with overwrite)."""
        async with self.session() as session:
            result = await session.execute(
                update(PromptRow).where(PromptRow.id == prompt_id).values(text=text_value)
            )
            if rowcount(result) == 0:
                raise NotFound(f"no prompt {prompt_id}")
        return await self.get_prompt(prompt_id)

    async def set_input_path(self, prompt_id: str, role: str, path: Path) -> None:
        """Record that a prompt's input file now lives at ``path`` (``cosmos verify --fix``)."""
        async with self.session() as session:
            result = await session.execute(
                update(PromptInputRow)
                .where(PromptInputRow.prompt_id == prompt_id, PromptInputRow.role == role)
                .values(path=str(path))
            )
            if rowcount(result) == 0:
                raise NotFound(f"prompt {prompt_id} has no {role} input")

    async def delete_prompt(self, prompt_id: str) -> None:
        """Delete a prompt, its inputs, runs and their timelines in one transaction."""
        async with self.session() as session:
            await _refuse_active(session, RunRow.prompt_id == prompt_id)
            result = await session.execute(delete(PromptRow).where(PromptRow.id == prompt_id))
            if rowcount(result) == 0:
                raise NotFound(f"no prompt {prompt_id}")

    # runs ----------------------------------------------------------------------------

    async def add_run(
        self,
        prompt_id: str | None,
        params: GenerationParams,
        run_type: RunType = RunType.TRANSFER,
        profile: str = "transfer1",
        priority: int = 0,
        source_run_id: str | None = None,
        reason: str = "created",
        target: str | None = None,
    ) -> Run:
        """Insert a queued run and its first timeline event; return it.

        ``target`` pins it to one host or cluster (the queue places it nowhere else).
        """
        run_id = self.ids.new(RUN_PREFIX)
        now = self.clock()
        async with self.session() as session:
            seq = await session.scalar(select(func.coalesce(func.max(RunRow.queue_seq), 0)))
            session.add(
                RunRow(
                    id=run_id,
                    prompt_id=prompt_id,
                    type=run_type.value,
                    profile=profile,
                    state=RunState.QUEUED.value,
                    priority=priority,
                    queue_seq=(seq or 0) + 1,
                    params=json.dumps(params.to_dict()),
                    attempt=0,
                    created_at=now,
                    updated_at=now,
                    source_run_id=source_run_id,
                    target=target,
                )
            )
            await session.flush()
            session.add(
                RunEventRow(
                    run_id=run_id, at=now, from_state=None, to_state="queued", reason=reason
                )
            )
        return await self.get_run(run_id)

    async def get_run(self, run_id: str, with_events: bool = True) -> Run:
        """Return the run with this exact id, with its timeline.

        Raises:
            NotFound: When there is none.
        """
        async with self.session() as session:
            row = await session.get(RunRow, run_id)
            if row is None:
                raise NotFound(f"no run {run_id}; see 'cosmos list runs'")
            events: Sequence[RunEventRow] = ()
            if with_events:
                events = (
                    await session.scalars(
                        select(RunEventRow)
                        .where(RunEventRow.run_id == run_id)
                        .order_by(RunEventRow.id)
                    )
                ).all()
            prompt_text = None
            if row.prompt_id:
                prompt_text = await session.scalar(
                    select(PromptRow.text).where(PromptRow.id == row.prompt_id)
                )
        return run_from_row(row, events, prompt_text)

    async def list_runs(
        self,
        where: RunFilter = RunFilter(),
        offset: int = 0,
        limit: int = 50,
        sort: str = "created",
        descending: bool = True,
    ) -> Page[Run]:
        """Return one page of runs matching ``where``, newest first by default."""
        query = _run_query(where)
        column = RUN_SORTS.get(sort, RunRow.created_at)
        order = column.desc() if descending else column.asc()
        async with self.session() as session:
            total = await session.scalar(select(func.count()).select_from(query.subquery()))
            rows = (
                await session.execute(
                    query.add_columns(PromptRow.text)
                    .outerjoin(PromptRow, PromptRow.id == RunRow.prompt_id)
                    .order_by(order, RunRow.id.desc())
                    .offset(offset)
                    .limit(limit)
                )
            ).all()
        items = tuple(run_from_row(row, (), prompt_text) for row, prompt_text in rows)
        return Page(items=items, total=total or 0, offset=offset, limit=limit)

    async def transition(
        self,
        run_id: str,
        target: RunState,
        reason: str,
        *,
        claimer: str | None = None,
        **fields: Any,
    ) -> Run:
        """Move a run to ``target`` and record why, in one transaction.

        The UPDATE is conditional on the state read in the same transaction, so of two
        processes racing to move a run only one succeeds; the other gets InvalidTransition.

        Args:
            run_id: The run.
            target: The new state; must be allowed from the current one.
            reason: Why, for the timeline.
            claimer: When given, the run must also be unclaimed or claimed by ``claimer``
                (``claimed_by IS NULL OR claimed_by = claimer``), so a run that another
                scheduler claimed is not taken; ClaimedElsewhere otherwise.
            **fields: Other run columns to set in the same transaction.
        """
        now = self.clock()
        values = _run_values(fields)
        async with self.session() as session:
            found = (
                await session.execute(
                    select(RunRow.state, RunRow.claimed_by).where(RunRow.id == run_id)
                )
            ).first()
            if found is None:
                raise NotFound(f"no run {run_id}")
            current, claimed_by = found
            check_transition(run_id, RunState(current), target)
            conditions = [RunRow.id == run_id, RunRow.state == current]
            if claimer is not None:
                if claimed_by not in (None, claimer):
                    raise ClaimedElsewhere(run_id, claimed_by, target.value)
                conditions.append(or_(RunRow.claimed_by.is_(None), RunRow.claimed_by == claimer))
            if target.is_terminal:
                values.setdefault("finished_at", now)
            if target == RunState.QUEUED:
                values.setdefault("finished_at", None)
                # Back in the queue: no scheduler holds it any more (see engine/queue.py).
                values.setdefault("claimed_by", None)
                values.setdefault("claimed_at", None)
            if target == RunState.RUNNING:
                values.setdefault("started_at", now)
            result = await session.execute(
                update(RunRow)
                .where(*conditions)
                .values(state=target.value, updated_at=now, **values)
            )
            if rowcount(result) != 1:
                raise InvalidTransition(run_id, current, target.value)
            session.add(
                RunEventRow(
                    run_id=run_id, at=now, from_state=current, to_state=target.value, reason=reason
                )
            )
        return await self.get_run(run_id)

    async def update_run(self, run_id: str, **fields: Any) -> None:
        """Set run columns that are not the state (progress, container id, ...)."""
        values = _run_values(fields)
        async with self.session() as session:
            result = await session.execute(
                update(RunRow).where(RunRow.id == run_id).values(updated_at=self.clock(), **values)
            )
            if rowcount(result) == 0:
                raise NotFound(f"no run {run_id}")

    async def rate(self, run_id: str, rating: int | None) -> Run:
        """Set a run's rating (1-5, or None to clear)."""
        if rating is not None and not (isinstance(rating, int) and 1 <= rating <= 5):
            raise ValidationError(f"rating must be 1 to 5, not {rating!r}", field="rating")
        async with self.session() as session:
            result = await session.execute(
                update(RunRow).where(RunRow.id == run_id).values(rating=rating)
            )
            if rowcount(result) == 0:
                raise NotFound(f"no run {run_id}")
        return await self.get_run(run_id)

    async def delete_run(self, run_id: str) -> None:
        """Delete a run and its timeline; refuses a run that is still active."""
        async with self.session() as session:
            await _refuse_active(session, RunRow.id == run_id)
            await session.execute(
                update(RunRow).where(RunRow.source_run_id == run_id).values(source_run_id=None)
            )
            result = await session.execute(delete(RunRow).where(RunRow.id == run_id))
            if rowcount(result) == 0:
                raise NotFound(f"no run {run_id}")

    async def run_ids_of_prompt(self, prompt_id: str) -> list[str]:
        """Return the ids of every run of a prompt."""
        async with self.session() as session:
            return list(
                await session.scalars(select(RunRow.id).where(RunRow.prompt_id == prompt_id))
            )

    async def bulk_insert(
        self, prompts: Iterable[dict[str, Any]], runs: Iterable[dict[str, Any]]
    ) -> None:
        """Insert many prompt and run rows through Core (for benchmarks and imports)."""
        async with self.session() as session:
            connection = await session.connection()
            # ``__table__`` is typed as any FromClause; a declarative class's is a Table.
            for table, batch in (
                (cast(Table, PromptRow.__table__), list(prompts)),
                (cast(Table, RunRow.__table__), list(runs)),
            ):
                if batch:
                    await connection.execute(insert(table), batch)


def _prompt_text_clause(value: str) -> Any:
    """Match prompts whose name or text contains ``value`` (trigram index from 3 chars)."""
    if len(value) >= 3:
        return text(
            "prompts.rowid IN (SELECT rowid FROM prompts_fts WHERE prompts_fts MATCH :q)"
        ).bindparams(q=fts_query(value))
    pattern = "%" + _escape_like(value) + "%"
    return or_(PromptRow.text.like(pattern, escape="\\"), PromptRow.name.like(pattern, escape="\\"))


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")


def _run_query(where: RunFilter) -> Select[Any]:
    query = select(RunRow)
    if where.states:
        query = query.where(RunRow.state.in_([s.value for s in where.states]))
    if where.type:
        query = query.where(RunRow.type == where.type.value)
    if where.prompt_id:
        query = query.where(RunRow.prompt_id == where.prompt_id)
    if where.min_rating is not None:
        query = query.where(RunRow.rating >= where.min_rating)
    if where.since:
        query = query.where(RunRow.created_at >= where.since)
    if where.until:
        query = query.where(RunRow.created_at < where.until)
    if where.host:
        query = query.where(RunRow.host == where.host)
    if where.batch_id:
        query = query.where(RunRow.batch_id == where.batch_id)
    if where.text:
        query = query.where(
            RunRow.prompt_id.in_(select(PromptRow.id).where(_prompt_text_clause(where.text)))
        )
    return query


def _run_values(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - RUN_FIELDS
    if unknown:
        raise ValueError(f"not run fields: {sorted(unknown)}")
    values = dict(fields)
    for key in ("gpus", "devices"):
        if values.get(key) is not None and not isinstance(values[key], str):
            values[key] = ",".join(str(g) for g in values[key])
    if "outputs" in values and values["outputs"] is not None:
        values["outputs"] = json.dumps(list(values["outputs"]))
    if "spec" in values and values["spec"] is not None and not isinstance(values["spec"], str):
        values["spec"] = json.dumps(values["spec"])
    if "failure_kind" in values and values["failure_kind"] is not None:
        values["failure_kind"] = str(values["failure_kind"])
    if "log_path" in values and values["log_path"] is not None:
        values["log_path"] = str(values["log_path"])
    return values


async def _refuse_active(session: AsyncSession, condition: Any) -> None:
    active = [s.value for s in RunState if s.is_active]
    busy = (
        await session.scalars(select(RunRow.id).where(condition, RunRow.state.in_(active)))
    ).all()
    if busy:
        raise ValidationError(
            f"run(s) {', '.join(busy)} are still active; cancel them first ('cosmos cancel ID')",
            field="id",
        )
