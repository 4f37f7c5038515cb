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

from signals_stream.batch.compile import (
    EventsTable,
    batch_table,
    compile_from_state,
    compile_group,
    compile_state,
)
from signals_stream.batch.dialects import SqlDialect
from signals_stream.batch.incremental import merge_states, not_incremental
from signals_stream.definitions import AttributeGroup
from signals_stream.errors import ConfigurationError
from signals_stream.warehouse import TableRef, WarehouseError, parse_warehouse_url
from signals_stream.warehouse.sql import columns_sql
from signals_stream.warehouse.urls import Engine

__all__ = ["BatchResult", "WarehouseConnection", "read_events_table", "run_batch"]

Stage = Callable[[str], None]


@dataclass
class BatchResult:
    """What one run did."""

    group: str
    table: str
    rows: int
    computed_at_ms: int
    seconds: float
    mode: str = "full"  # "incremental", or "full (why)"

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

    def interrupt(self) -> None:
        """Stop the statement running on this connection (from another thread)."""
        if self.engine == "duckdb":
            self._conn.interrupt()
        else:
            self._conn.cancel_safe()

    def cursor_batches(self, sql: str, size: int) -> Any:
        """``(column names, iterator of row batches)`` of a query, read ``size`` rows at a
        time (PostgreSQL: a server-side cursor, so the rows never all sit in memory)."""
        if self.engine == "duckdb":
            cursor = self._conn.execute(sql)
        else:
            cursor = self._conn.cursor(name="signals_export")
            cursor.execute(sql.encode())
        names = [d[0] for d in cursor.description]

        def batches() -> Any:
            while rows := cursor.fetchmany(size):
                yield rows

        return names, batches()

    def _rollback(self) -> None:
        try:
            self._conn.rollback()
        except self._errors:
            pass

    def close(self) -> None:
        self._conn.close()


WarehouseConnection = _Connection


def read_events_table(conn: _Connection, events: TableRef) -> EventsTable:
    """``events`` and its columns, as the compiler needs them.

    Raises:
        WarehouseError: the table does not exist.
    """
    lookup = events if conn.engine == "duckdb" else TableRef(None, events.schema, events.table)
    types = {str(n): str(t) for n, t in conn.query(columns_sql(conn.engine, lookup))}
    if not types:
        raise WarehouseError(f"table {events.schema}.{events.table} does not exist")
    return EventsTable.of(lookup, types, conn.engine)


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


def _tables_present(conn: _Connection, schema: str) -> set[str]:
    rows = conn.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = "
        + exp.Literal.string(schema).sql(conn.engine)
    )
    return {str(name) for (name,) in rows}


def _loaded_until_ms(conn: _Connection, events: TableRef) -> int | None:
    """The newest ``load_tstamp`` now (the run's snapshot of the load)."""
    column = exp.column("load_tstamp", quoted=True)
    moment = exp.Max(this=column)
    epoch = SqlDialect(conn.engine).call("epoch_ms", moment)
    (value,) = conn.query(
        f"SELECT {epoch.sql(conn.engine)} FROM {_table_sql(events, conn.engine)}"
    )[0]
    return None if value is None else int(value)


def run_batch(
    group: AttributeGroup,
    warehouse_url: str,
    events: TableRef,
    schema: str,
    *,
    now_ms: int | None = None,
    stage: Stage | None = None,
    lock_wait_s: float = 60.0,
    full: bool = False,
) -> BatchResult:
    """Compute ``group`` over ``events`` into ``<schema>.<group>_<version>_attributes``:
    incrementally from the stored states and the events loaded since the last run when the
    group allows it (``batch.incremental``), else (or with ``full``) over every event.

    Raises:
        WarehouseError: unreachable, no events table, or the SQL failed (the old table stays).
        DefinitionError: the group has no SQL translation.
    """
    started = time.monotonic()
    now = int(time.time() * 1000) if now_ms is None else now_ms
    report = stage or (lambda _: None)
    conn = _Connection(warehouse_url, report, lock_wait_s)
    target = batch_table(group, schema)
    try:
        report("reading the events table's columns")
        table = read_events_table(conn, events)
        lookup, types = table.ref, table.columns.types
        name = _table_sql(target, conn.engine)
        why_full = not_incremental(group)
        if why_full is None and "load_tstamp" not in types:
            why_full = "the events table has no load_tstamp"
        count_text = f"{len(group.attributes or ())} attributes"
        report(f"computing {count_text} into {target.schema}.{target.table}")
        schema_sql = exp.to_identifier(schema, quoted=True).sql(conn.engine)
        statements = [f"CREATE SCHEMA IF NOT EXISTS {schema_sql}"]
        if why_full is None:
            mode, after = "incremental", None
            state_ref = TableRef(None, schema, f"{target.table.removesuffix('_attributes')}_state")
            mark_ref = TableRef(None, schema, state_ref.table + "_watermark")
            if not full and {state_ref.table, mark_ref.table} <= _tables_present(conn, schema):
                (after,) = conn.query(
                    f"SELECT loaded_to_ms FROM {_table_sql(mark_ref, conn.engine)}"
                )[0]
            mode = "incremental" if after is not None else "full (states rebuilt)"
            until = _loaded_until_ms(conn, lookup)
            until = now if until is None else until
            statements += _incremental(
                group, table, conn.engine, state_ref, mark_ref, after, until, name, now
            )
        else:
            mode = f"full ({why_full})"
            query = compile_group(group, table, dialect=conn.engine, now_ms=now)
            statements += [
                f"DROP TABLE IF EXISTS {name}",
                f"CREATE TABLE {name} AS {query.expression.sql(dialect=conn.engine)}",
            ]
        conn.replace(statements)
        (count,) = conn.query(f"SELECT COUNT(*) FROM {name}")[0]
    finally:
        conn.close()
    return BatchResult(
        group=f"{group.name}:{group.version}",
        table=f"{target.schema}.{target.table}",
        rows=int(count),
        computed_at_ms=now,
        seconds=round(time.monotonic() - started, 3),
        mode=mode,
    )


def _incremental(
    group: AttributeGroup,
    table: EventsTable,
    engine: Engine,
    state_ref: TableRef,
    mark_ref: TableRef,
    after: int | None,
    until: int,
    output: str,
    now: int,
) -> list[str]:
    """Statements of an incremental run: merge this run's states into the stored ones, then
    the attributes from the merged states, then the new watermark."""
    sql = SqlDialect(engine)
    fresh = compile_state(group, table, dialect=engine, loaded=(after, until))
    state = _table_sql(state_ref, engine)
    stored = exp.table_(state_ref.table, db=state_ref.schema, quoted=True)
    if after is None:
        merged: exp.Expr = fresh
    else:
        merged = merge_states(sql, group, stored, exp.paren(fresh))
    staged = TableRef(None, state_ref.schema, state_ref.table + "_next")
    staged_sql = _table_sql(staged, engine)
    final = compile_from_state(group, table, stored.copy(), dialect=engine, now_ms=now)
    mark = _table_sql(mark_ref, engine)
    bare_name = exp.to_identifier(state_ref.table, quoted=True).sql(engine)
    return [
        f"DROP TABLE IF EXISTS {staged_sql}",
        f"CREATE TABLE {staged_sql} AS {merged.sql(dialect=engine)}",
        f"DROP TABLE IF EXISTS {state}",
        f"ALTER TABLE {staged_sql} RENAME TO {bare_name}",
        f"DROP TABLE IF EXISTS {output}",
        f"CREATE TABLE {output} AS {final.sql(dialect=engine)}",
        f"DROP TABLE IF EXISTS {mark}",
        f"CREATE TABLE {mark} AS SELECT CAST({until} AS BIGINT) AS loaded_to_ms",
    ]
