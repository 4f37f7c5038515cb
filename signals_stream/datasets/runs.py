"""Dataset runs on the configured warehouse (the edge): ``datasets/runs`` and the CLI.

:func:`prepare` compiles a request against the warehouse's events table (its columns decide
the SQL) and checks a user-supplied anchors table, so a bad request fails before any run
exists (422). :func:`execute` creates each stage's table in turn, in its own transaction;
:class:`DatasetRuns` runs it in a thread (never on the event loop), keeps each run's status
(``pending`` -> ``success`` | ``failed`` with the error) and cancels by interrupting the
running statement. Runs live in the process that accepted them.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
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
from signals_stream.errors import Conflict, DefinitionError, NotFoundError
from signals_stream.registry.render import key_wire
from signals_stream.settings import Settings
from signals_stream.warehouse import TableRef, WarehouseError
from signals_stream.warehouse.sql import columns_sql

__all__ = [
    "DatasetRun",
    "DatasetRuns",
    "bundle_response",
    "execute",
    "prepare",
    "preview",
    "table_sql",
]

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
        source = anchors.source
        ref = TableRef(
            source.database if conn.engine == "duckdb" else None,
            source.schema_ or settings.batch_schema,
            source.table,
        )
        present = {str(n) for n, _ in conn.query(columns_sql(conn.engine, ref))}
        needed = [k.name for k, _ in bundle.attributes] + [ANCHOR_TS]
        if anchors.has_label is not False:
            needed.append(LABEL)
        missing = [c for c in needed if c not in present]
        if not present or missing:
            what = "does not exist" if not present else f"has no column {', '.join(missing)}"
            raise DefinitionError(f"anchors.source: table {ref.schema}.{ref.table} {what}")
    return bundle


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
    """One run: its id, what it builds and how it is going."""

    id: uuid.UUID
    bundle: Bundle
    created_at: datetime
    status: str = "pending"
    error: str | None = None
    row_count: int | None = None
    cancelled: bool = False
    connection: WarehouseConnection | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def dataset_json(self) -> dict[str, Any]:
        ref = self.bundle.dataset.table
        return {"database": ref.database, "schema": ref.schema, "table": ref.table}

    def status_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": str(self.id),
            "status": self.status,
            "dataset": self.dataset_json(),
        }
        if self.error is not None:
            body["error"] = self.error
        if self.row_count is not None:
            body["row_count"] = self.row_count
        return body


class DatasetRuns:
    """The runs of one process, executed one at a time on a worker thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._runs: dict[uuid.UUID, DatasetRun] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dataset-run")

    def prepare(self, request: DatasetBundleRequest) -> Bundle:
        """Compile ``request`` on the warehouse (blocking: call it off the event loop)."""
        conn = connect(self.settings)
        try:
            return prepare(request, conn, self.settings)
        finally:
            conn.close()

    def submit(self, bundle: Bundle) -> DatasetRun:
        run = DatasetRun(uuid.uuid4(), bundle, datetime.now(UTC))
        self._runs[run.id] = run
        self._pool.submit(self._execute, run)
        return run

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

    def get(self, run_id: str) -> DatasetRun:
        """Raises: DefinitionError (not a UUID: 422), NotFoundError (404)."""
        try:
            key = uuid.UUID(run_id)
        except ValueError:
            raise DefinitionError(f"run_id: {run_id!r} is not a UUID") from None
        run = self._runs.get(key)
        if run is None:
            raise NotFoundError(f"no dataset run {run_id} (runs live in the process that ran them)")
        return run

    def cancel(self, run_id: str) -> DatasetRun:
        """Stop a pending run (it ends ``failed`` with ``error: cancelled``).

        Raises:
            Conflict: the run has already finished.
        """
        run = self.get(run_id)
        with run.lock:
            if run.status != "pending":
                raise Conflict(f"dataset run {run_id} has already finished: {run.status}")
            run.cancelled = True
            if run.connection is not None:
                run.connection.interrupt()
            else:
                run.status, run.error = "failed", "cancelled"
        return run

    def preview(self, run_id: str, limit: int) -> dict[str, Any]:
        """Raises: Conflict unless the run succeeded; DefinitionError for a bad limit."""
        if not 1 <= limit <= MAX_PREVIEW_ROWS:
            raise DefinitionError(f"limit: must be between 1 and {MAX_PREVIEW_ROWS}, got {limit}")
        run = self.get(run_id)
        if run.status != "success":
            raise Conflict(f"dataset run {run_id} is {run.status}: a preview needs success")
        conn = connect(self.settings)
        try:
            columns, data = preview(conn, run.bundle.dataset.table, limit)
        finally:
            conn.close()
        return {"columns": columns, "data": data, "row_count": run.row_count or 0}

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
