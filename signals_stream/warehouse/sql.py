"""The sync's SQL, built once for every dialect with sqlglot. Pure: text in, text out.

A run reads the rows of a warehouse group's table changed since the watermark, in chunks, by
keyset pagination on (``timestamp_field``, id column): every chunk starts strictly after the
last row of the previous one, so a chunk boundary inside rows sharing one timestamp neither
skips nor repeats a row, and no chunk needs an OFFSET scan. Timestamps are compared as UTC
(a naive column is read as UTC).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlglot
from sqlglot import exp

from signals_stream.warehouse.urls import Engine

__all__ = ["DIALECTS", "TableRef", "Watermark", "changed_rows_sql", "columns_sql"]

DIALECTS: dict[Engine, str] = {
    "duckdb": "duckdb",
    "postgres": "postgres",
    "snowflake": "snowflake",
    "bigquery": "bigquery",
}


@dataclass(frozen=True, slots=True)
class TableRef:
    """``database.schema.table``; ``database`` is left out where the connection picks it
    (PostgreSQL: one database per connection)."""

    database: str | None
    schema: str
    table: str


@dataclass(frozen=True, slots=True)
class Watermark:
    """The last row synced: its timestamp (epoch ms, UTC) and its id."""

    ts_ms: int
    id: str


def _timestamp(ms: int) -> exp.Expression:
    # An instant with its zone, so a zoned column compares exactly; adapters run their
    # sessions in UTC, so a naive column is compared as UTC.
    text = datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
    return exp.cast(exp.Literal.string(text), exp.DataType.build("timestamptz"))


def _table(ref: TableRef) -> exp.Table:
    return exp.table_(ref.table, db=ref.schema, catalog=ref.database, quoted=True)


def _column(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def changed_rows_sql(
    engine: Engine,
    table: TableRef,
    *,
    id_column: str,
    timestamp_column: str,
    fields: list[str],
    after: Watermark | None,
    since_ms: int | None,
    limit: int,
) -> str:
    """One chunk: ``id, timestamp, fields...`` of the rows after ``after`` (else at or after
    ``since_ms``, else all), oldest first, at most ``limit``. The id is read as text."""
    ts, key = _column(timestamp_column), _column(id_column)
    key_text = exp.cast(key, exp.DataType.build("text"))
    query = sqlglot.select(key_text.as_("__id"), ts.as_("__ts"), *map(_column, fields)).from_(
        _table(table)
    )
    query = query.where(exp.Not(this=exp.Is(this=ts.copy(), expression=exp.Null())))
    if after is not None:
        mark = _timestamp(after.ts_ms)
        query = query.where(
            exp.or_(
                exp.GT(this=ts.copy(), expression=mark),
                exp.and_(
                    exp.EQ(this=ts.copy(), expression=mark.copy()),
                    exp.GT(this=key_text.copy(), expression=exp.Literal.string(after.id)),
                ),
            )
        )
    elif since_ms is not None:
        query = query.where(exp.GTE(this=ts.copy(), expression=_timestamp(since_ms)))
    query = query.order_by(ts.copy(), key_text.copy()).limit(limit)
    return query.sql(dialect=DIALECTS[engine])


def columns_sql(engine: Engine, table: TableRef) -> str:
    """The table's column names and types, from ``information_schema``."""
    if engine == "bigquery":
        source = exp.table_("COLUMNS", db="INFORMATION_SCHEMA", catalog=table.schema, quoted=True)
    elif engine == "duckdb":  # one information_schema for every attached catalog
        source = exp.table_("columns", db="information_schema")
    else:
        source = exp.table_("columns", db="information_schema", catalog=table.database)
    query = (
        sqlglot.select("column_name", "data_type")
        .from_(source)
        .where(exp.column("table_name").eq(exp.Literal.string(table.table)))
    )
    if engine != "bigquery":
        query = query.where(exp.column("table_schema").eq(exp.Literal.string(table.schema)))
    if engine == "duckdb" and table.database is not None:
        query = query.where(exp.column("table_catalog").eq(exp.Literal.string(table.database)))
    return query.order_by("ordinal_position").sql(dialect=DIALECTS[engine])
