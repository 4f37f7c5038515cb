"""``signals-stream batch run``: compute a group in the warehouse into its attributes table.

One run: read the events table's columns (which self-describing schema versions are loaded),
compile the group for the warehouse's dialect at the run's clock, and replace
``<batch schema>.<group>_<version>_attributes`` with the result in one transaction (readers
see the old table or the new one, never half of it). The table has the key column, one
column per attribute and ``computed_at``; the sync engine then serves it like an external
batch group's table (``sync run GROUP``). DuckDB and PostgreSQL run here; Snowflake and
BigQuery get their SQL from ``batch sql``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlglot import exp

from signals_stream.batch.compile import EventsTable, batch_table, compile_group
from signals_stream.definitions import AttributeGroup
from signals_stream.errors import ConfigurationError
from signals_stream.warehouse import TableRef, WarehouseError, parse_warehouse_url
from signals_stream.warehouse.sql import columns_sql
from signals_stream.warehouse.urls import Engine

__all__ = ["BatchResult", "run_batch"]

Stage = Callable[[str], None]


@dataclass
class BatchResult:
    """What one run did."""

    group: str
    table: str
    rows: int
    computed_at_ms: int
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class _Connection:
    """A read-write connection to DuckDB or PostgreSQL (the sync's adapters are read-only)."""

    def __init__(self, url: str, stage: Stage, lock_wait_s: float) -> None:
        parsed = parse_warehouse_url(url)
        self.engine: Engine = parsed.engine
        self.safe = parsed.safe
        if parsed.engine == "duckdb":
            import duckdb  # the edge

            if not Path(parsed.path).exists():
                raise WarehouseError(f"DuckDB warehouse file {parsed.path} does not exist")
            self._conn: Any = _duckdb_writer(duckdb, parsed.path, stage, lock_wait_s)
            self._conn.execute("SET TimeZone = 'UTC'")
            self._errors: tuple[type[Exception], ...] = (duckdb.Error,)
        elif parsed.engine == "postgres":
            import psycopg  # the edge

            try:
                self._conn = psycopg.connect(parsed.url, connect_timeout=10)
            except psycopg.Error as exc:  # the message may quote the URL
                raise WarehouseError(f"PostgreSQL {parsed.safe} is unreachable") from exc
            self._conn.execute("SET TIME ZONE 'UTC'")
            self._conn.commit()
            self._errors = (psycopg.Error,)
        else:
            raise ConfigurationError(
                f"SIGNALS_WAREHOUSE_URL: batch run needs DuckDB or PostgreSQL, not {parsed.engine} "
                "(print its SQL with `signals-stream batch sql GROUP --dialect "
                f"{parsed.engine}`)"
            )

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        try:
            cursor = self._conn.execute(sql if self.engine == "duckdb" else sql.encode())
            return list(cursor.fetchall())
        except self._errors as exc:
            self._rollback()
            raise WarehouseError(f"{self.engine}: {exc}") from exc

    def replace(self, statements: list[str]) -> None:
        """Run ``statements`` in one transaction."""
        try:
            if self.engine == "duckdb":
                self._conn.execute("BEGIN TRANSACTION")
            for sql in statements:
                self._conn.execute(sql if self.engine == "duckdb" else sql.encode())
            self._conn.commit()
        except self._errors as exc:
            self._rollback()
            raise WarehouseError(f"{self.engine}: {exc}") from exc

    def _rollback(self) -> None:
        try:
            self._conn.rollback()
        except self._errors:
            pass

    def close(self) -> None:
        self._conn.close()


def _duckdb_writer(duckdb: Any, path: str, stage: Stage, wait_s: float) -> Any:
    """A read-write connection to a DuckDB file. DuckDB lets one process write or several
    read; a worker's sync holds a read-only connection for the length of a run, so the lock
    is waited for (up to ``wait_s``) rather than failing the run at once."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return duckdb.connect(path)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise WarehouseError(f"DuckDB warehouse {path}: {exc}") from exc
            stage("waiting for the DuckDB file's write lock (a sync is reading it)")
            time.sleep(0.5)
        except duckdb.Error as exc:
            raise WarehouseError(f"DuckDB warehouse {path}: {exc}") from exc


def _table_sql(ref: TableRef, engine: Engine) -> str:
    return exp.table_(ref.table, db=ref.schema, catalog=ref.database, quoted=True).sql(engine)


def run_batch(
    group: AttributeGroup,
    warehouse_url: str,
    events: TableRef,
    schema: str,
    *,
    now_ms: int | None = None,
    stage: Stage | None = None,
    lock_wait_s: float = 60.0,
) -> BatchResult:
    """Compute ``group`` over ``events`` into ``<schema>.<group>_<version>_attributes``.

    Raises:
        WarehouseError: unreachable, no events table, or the SQL failed (the old table stays).
        DefinitionError: the group has no SQL translation.
    """
    started = time.monotonic()
    now = int(time.time() * 1000) if now_ms is None else now_ms
    report = stage or (lambda _: None)
    conn = _Connection(warehouse_url, report, lock_wait_s)
    try:
        report("reading the events table's columns")
        lookup = events if conn.engine == "duckdb" else TableRef(None, events.schema, events.table)
        types = {str(n): str(t) for n, t in conn.query(columns_sql(conn.engine, lookup))}
        if not types:
            raise WarehouseError(f"table {events.schema}.{events.table} does not exist")
        table = EventsTable.of(lookup, types, conn.engine)
        query = compile_group(group, table, dialect=conn.engine, now_ms=now)
        target = batch_table(group, schema)
        name = _table_sql(target, conn.engine)
        count_text = f"{len(query.attribute_columns)} attributes"
        report(f"computing {count_text} into {target.schema}.{target.table}")
        schema_sql = exp.to_identifier(schema, quoted=True).sql(conn.engine)
        conn.replace(
            [
                f"CREATE SCHEMA IF NOT EXISTS {schema_sql}",
                f"DROP TABLE IF EXISTS {name}",
                f"CREATE TABLE {name} AS {query.expression.sql(dialect=conn.engine)}",
            ]
        )
        (count,) = conn.query(f"SELECT COUNT(*) FROM {name}")[0]
    finally:
        conn.close()
    return BatchResult(
        group=f"{group.name}:{group.version}",
        table=f"{target.schema}.{target.table}",
        rows=int(count),
        computed_at_ms=now,
        seconds=round(time.monotonic() - started, 3),
    )
