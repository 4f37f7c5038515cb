"""Dataset runs on the configured warehouse (the edge): ``datasets/runs`` and the CLI.

:func:`prepare` compiles a request against the warehouse's events table (its columns decide
the SQL) and checks a user-supplied anchors table, so a bad request fails before any run
exists (422). :func:`execute` creates each stage's table in turn, in its own transaction;
:class:`DatasetRuns` runs it in a thread (never on the event loop), keeps each run's status
(``pending`` -> ``success`` | ``failed`` with the error) and cancels by interrupting the
running statement. Each run's record is in the run log (``datasets.run_log``), so every
process answers for it and a restart keeps it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlglot import exp

from signals_stream.batch.compile import EventsTable, parse_table_ref
from signals_stream.batch.dialects import DialectName
from signals_stream.batch.run import WarehouseConnection, read_events_table
from signals_stream.datasets.anchors import ANCHOR_TS, LABEL
from signals_stream.datasets.bundle import Bundle, Stage, build_bundle, create_table_sql
from signals_stream.datasets.models import (
    MAX_PREVIEW_ROWS,
    AttributeSqlFile,
    DatasetBundleRequest,
    DatasetBundleResponse,
    DatasetSqlFile,
    UserSuppliedAnchors,
)
from signals_stream.datasets.run_log import (
    HEARTBEAT_S,
    KafkaRunLog,
    RunLog,
    RunRecord,
    now_utc,
    runner_name,
)
from signals_stream.errors import Conflict, DefinitionError, NotFoundError
from signals_stream.registry.render import key_wire
from signals_stream.settings import Settings
from signals_stream.warehouse import TableRef, WarehouseError
from signals_stream.warehouse.sql import columns_sql

__all__ = [
    "DatasetRun",
    "DatasetRuns",
    "anchors_table",
    "bundle_response",
    "execute",
    "prepare",
    "preview",
    "table_sql",
]

logger = logging.getLogger(__name__)

Report = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def table_sql(ref: TableRef, engine: str) -> str:
    return exp.table_(ref.table, db=ref.schema, catalog=ref.database, quoted=True).sql(engine)


def connect(settings: Settings, report: Report = _quiet) -> WarehouseConnection:
    return WarehouseConnection(settings.warehouse, report, 60.0)


def prepare(
    request: DatasetBundleRequest,
    conn: WarehouseConnection,
    settings: Settings,
    *,
    dialect: DialectName | None = None,
) -> Bundle:
    """``request`` compiled for the warehouse behind ``conn`` (or, to print, for ``dialect``
    over the same events table's columns).

    Raises:
        DefinitionError: no SQL translation, or a user-supplied table without the columns.
        WarehouseError: no events table.
    """
    events = read_events_table(conn, parse_table_ref(settings.batch_events_table))
    target = dialect or conn.engine
    if target != conn.engine:
        events = EventsTable.of(events.ref, dict(events.columns.types), target)
    output = TableRef(None, settings.batch_schema, "")
    bundle = build_bundle(request, events, dialect=target, output=output)
    anchors = request.anchors
    if isinstance(anchors, UserSuppliedAnchors):
        anchors_table(anchors, conn, settings, [k.name for k, _ in bundle.attributes])
    return bundle


def anchors_table(
    anchors: UserSuppliedAnchors,
    conn: WarehouseConnection,
    settings: Settings,
    key_names: list[str],
) -> TableRef:
    """The user-supplied anchors' table on the warehouse behind ``conn``, checked.

    Raises:
        DefinitionError: the table does not exist or lacks a key, ``anchor_ts`` or ``label``.
    """
    source = anchors.source
    ref = TableRef(
        source.database if conn.engine == "duckdb" else None,
        source.schema_ or settings.batch_schema,
        source.table,
    )
    present = {str(n) for n, _ in conn.query(columns_sql(conn.engine, ref))}
    needed = [*key_names, ANCHOR_TS]
    if anchors.has_label is not False:
        needed.append(LABEL)
    missing = [c for c in needed if c not in present]
    if not present or missing:
        what = "does not exist" if not present else f"has no column {', '.join(missing)}"
        raise DefinitionError(f"anchors.source: table {ref.schema}.{ref.table} {what}")
    return ref


def bundle_response(bundle: Bundle) -> DatasetBundleResponse:
    """The ``datasets/sql`` answer: each stage's table and its SQL file."""

    def file(stage: Stage) -> dict[str, object]:
        ref = stage.table
        sql = ";\n".join(create_table_sql(stage, bundle.dialect)) + ";\n"
        return {"database": ref.database, "schema": ref.schema, "table": ref.table, "sql": sql}

    return DatasetBundleResponse(
        anchors=DatasetSqlFile.model_validate(file(bundle.anchors)),
        attributes=[
            AttributeSqlFile.model_validate({**file(stage), "attribute_key": key_wire(key)})
            for key, stage in bundle.attributes
        ],
        dataset=DatasetSqlFile.model_validate(file(bundle.dataset)),
    )


def execute(bundle: Bundle, conn: WarehouseConnection, report: Report = _quiet) -> int:
    """Create every stage's table, in order; the dataset's row count.

    Raises:
        WarehouseError: a statement failed (or was interrupted).
    """
    schemas = {(s.table.database, s.table.schema) for s in bundle.stages}
    for database, schema in sorted(schemas, key=str):
        name = exp.table_(schema, db=database, quoted=True).sql(conn.engine)
        conn.replace([f"CREATE SCHEMA IF NOT EXISTS {name}"])
    for stage in bundle.stages:
        report(f"{stage.table.schema}.{stage.table.table}")
        conn.replace(create_table_sql(stage, bundle.dialect))
    (count,) = conn.query(f"SELECT COUNT(*) FROM {table_sql(bundle.dataset.table, conn.engine)}")[0]
    return int(count)


def _json_cell(value: Any) -> Any:
    from signals_stream.warehouse.adapters import _json_value

    return _json_value(value)


def preview(
    conn: WarehouseConnection, table: TableRef, limit: int
) -> tuple[list[str], list[list[Any]]]:
    """The first ``limit`` rows of ``table`` (in anchor order), as JSON values."""
    names, batches = conn.cursor_batches(
        f"SELECT * FROM {table_sql(table, conn.engine)} LIMIT {int(limit)}", max(limit, 1)
    )
    rows = [[_json_cell(v) for v in row] for batch in batches for row in batch]
    return names, rows[:limit]


@dataclass
class DatasetRun:
    """A run of this process: what it builds and how it is going (the runner thread and the
    event loop both change it, under ``lock``)."""

    id: uuid.UUID
    bundle: Bundle
    request: dict[str, Any]
    created_at: datetime
    status: str = "pending"
    error: str | None = None
    row_count: int | None = None
    finished_at: datetime | None = None
    cancelled: bool = False
    saved: str | None = None  # the status last acknowledged in the run log
    connection: WarehouseConnection | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def dataset_json(self) -> dict[str, Any]:
        ref = self.bundle.dataset.table
        return {"database": ref.database, "schema": ref.schema, "table": ref.table}

    def record(self, runner: str) -> RunRecord:
        """The run as stored, its heartbeat now."""
        return RunRecord(
            id=str(self.id),
            status=self.status,
            dataset=self.dataset_json(),
            request=self.request,
            runner=runner,
            created_at=self.created_at,
            heartbeat_at=now_utc(),
            finished_at=self.finished_at,
            error=self.error,
            row_count=self.row_count,
        )


class DatasetRuns:
    """Runs, executed one at a time on a worker thread of this process, and every process's
    runs as the run log holds them.

    A run's record is written (and acknowledged) before ``submit`` returns, rewritten every
    ``HEARTBEAT_S`` while it is pending and when it ends; meanwhile the run log is read for
    cancels of this process's runs. Answers for another process's runs come from the log.
    """

    def __init__(self, settings: Settings, log: RunLog | None = None) -> None:
        self.settings = settings
        self.log: RunLog = log if log is not None else KafkaRunLog(settings)
        self.runner = runner_name(settings)
        self._runs: dict[str, DatasetRun] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dataset-run")
        self._tasks: set[asyncio.Task[None]] = set()
        self._watch: asyncio.Task[None] | None = None

    def prepare(self, request: DatasetBundleRequest) -> Bundle:
        """Compile ``request`` on the warehouse (blocking: call it off the event loop)."""
        conn = connect(self.settings)
        try:
            return prepare(request, conn, self.settings)
        finally:
            conn.close()

    async def submit(self, bundle: Bundle, request: dict[str, Any]) -> DatasetRun:
        """Record a pending run (acknowledged: every process answers for it from now on) and
        queue it."""
        run = DatasetRun(uuid.uuid4(), bundle, request, now_utc())
        await self._save(run)
        self._runs[str(run.id)] = run
        self._spawn(self._run(run))
        if self._watch is None or self._watch.done():
            self._watch = asyncio.create_task(self._watch_loop(), name="dataset-runs-watch")
        return run

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _save(self, run: DatasetRun) -> None:
        status = run.status
        await self.log.write_run(run.record(self.runner))
        run.saved = status

    async def _run(self, run: DatasetRun) -> None:
        await asyncio.get_running_loop().run_in_executor(self._pool, self._execute, run)
        run.finished_at = now_utc()
        try:
            await self._save(run)
        except Exception as exc:  # the watch loop tries again
            logger.warning("dataset run %s: recording %s failed: %s", run.id, run.status, exc)

    def _execute(self, run: DatasetRun) -> None:
        with run.lock:
            if run.cancelled:
                return
            try:
                run.connection = connect(self.settings)
            except WarehouseError as exc:
                run.status, run.error = "failed", str(exc)
                return
        conn = run.connection

        def stop_if_cancelled(_: str) -> None:
            if run.cancelled:
                raise WarehouseError("cancelled")

        try:
            count = execute(run.bundle, conn, stop_if_cancelled)
            run.status, run.row_count = "success", count
        except WarehouseError as exc:
            run.status = "failed"
            run.error = "cancelled" if run.cancelled else str(exc)
        finally:
            with run.lock:
                run.connection = None
            conn.close()

    async def _watch_loop(self) -> None:
        """While this process has runs pending (or not yet recorded as ended): heartbeats,
        cancels asked by other processes, and records that failed to be written."""
        while any(r.status == "pending" or r.saved != r.status for r in self._runs.values()):
            await asyncio.sleep(HEARTBEAT_S)
            try:
                _, cancels = await self.log.read()
                for run_id in cancels:
                    run = self._runs.get(run_id)
                    if run is not None and run.status == "pending" and not run.cancelled:
                        self._cancel_local(run)
                for run in list(self._runs.values()):
                    if run.status == "pending" or run.saved != run.status:
                        if run.status != "pending" and run.finished_at is None:
                            continue  # ending now: _run records it
                        await self._save(run)
            except Exception as exc:  # a broker outage: the next round tries again
                logger.warning("dataset runs: run log unavailable: %s", exc)

    @staticmethod
    def _run_key(run_id: str) -> str:
        try:
            return str(uuid.UUID(run_id))
        except ValueError:
            raise DefinitionError(f"run_id: {run_id!r} is not a UUID") from None

    async def get(self, run_id: str) -> RunRecord:
        """The run as of now, from this process or the run log.

        Raises: DefinitionError (not a UUID: 422), NotFoundError (404).
        """
        key = self._run_key(run_id)
        local = self._runs.get(key)
        if local is not None:
            return local.record(self.runner)
        runs, _ = await self.log.read()
        stored = runs.get(key)
        if stored is None:
            raise NotFoundError(f"no dataset run {run_id}")
        return stored.as_of(now_utc())

    def _cancel_local(self, run: DatasetRun) -> None:
        with run.lock:
            run.cancelled = True
            if run.connection is not None:
                run.connection.interrupt()
            else:
                run.status, run.error = "failed", "cancelled"

    async def cancel(self, run_id: str) -> str:
        """Stop a pending run (it ends ``failed`` with ``error: cancelled``); the answer's
        message. Another process's run is stopped by that process, within ``HEARTBEAT_S``.

        Raises:
            Conflict: the run has already finished.
        """
        record = await self.get(run_id)
        if record.status != "pending":
            raise Conflict(f"dataset run {run_id} has already finished: {record.status}")
        run = self._runs.get(record.id)
        if run is not None:
            self._cancel_local(run)
            return "cancelled"
        await self.log.write_cancel(record.id)
        return f"cancel sent to the process running it ({record.runner})"

    async def preview(self, run_id: str, limit: int) -> dict[str, Any]:
        """The first ``limit`` rows of a successful run's table.

        Raises: Conflict unless the run succeeded; DefinitionError for a bad limit;
        WarehouseError from the warehouse.
        """
        if not 1 <= limit <= MAX_PREVIEW_ROWS:
            raise DefinitionError(f"limit: must be between 1 and {MAX_PREVIEW_ROWS}, got {limit}")
        record = await self.get(run_id)
        if record.status != "success":
            raise Conflict(f"dataset run {run_id} is {record.status}: a preview needs success")
        dataset = record.dataset
        table = TableRef(dataset["database"], dataset["schema"], dataset["table"])

        def read() -> tuple[list[str], list[list[Any]]]:
            conn = connect(self.settings)
            try:
                return preview(conn, table, limit)
            finally:
                conn.close()

        columns, data = await asyncio.to_thread(read)
        return {"columns": columns, "data": data, "row_count": record.row_count or 0}

    async def close(self) -> None:
        for task in [*self._tasks, *([self._watch] if self._watch else [])]:
            task.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)
        await self.log.close()
