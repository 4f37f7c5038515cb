"""Warehouse adapters: one small interface, one implementation per engine (the edge).

:class:`Warehouse` is all the sync needs: the columns of a table, and the rows changed after a
watermark in bounded chunks (the SQL comes from :mod:`signals_stream.warehouse.sql`, the same
builder for every dialect). DuckDB, the embedded default, is opened read-only, so the tools
that load it can keep writing between runs; PostgreSQL through psycopg, its session in UTC.
Snowflake and BigQuery need their official connectors (optional extras, not installed here):
their SQL is generated and tested, their connections are not.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple, Self

from signals_stream.errors import ConfigurationError, SignalsStreamError
from signals_stream.warehouse.sql import TableRef, Watermark, changed_rows_sql, columns_sql
from signals_stream.warehouse.urls import Engine, WarehouseUrl, parse_warehouse_url

__all__ = [
    "ChangedRow",
    "DuckDBWarehouse",
    "PostgresWarehouse",
    "Warehouse",
    "WarehouseError",
    "open_warehouse",
]


class WarehouseError(SignalsStreamError):
    """The warehouse is unreachable, or a table or column is missing (a failed sync run)."""


class ChangedRow(NamedTuple):
    """One warehouse row: its key's id, its timestamp (epoch ms, UTC) and field values."""

    id: str
    ts_ms: int
    values: dict[str, Any]


def _json_value(value: Any) -> Any:
    """A warehouse value as JSON: decimals as floats, times as ISO 8601 UTC, lists mapped."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return aware.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return value


def _epoch_ms(value: Any) -> int:
    if not isinstance(value, dt.datetime):
        raise WarehouseError(f"timestamp_field holds {type(value).__name__}, not a timestamp")
    aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)  # naive columns are UTC
    return int(aware.timestamp() * 1000)


class Warehouse:
    """What the sync reads from a warehouse: :meth:`columns` and :meth:`changed_rows`. An
    engine's adapter only runs a query (``_query``) and closes its connection; the paging,
    the column checks and the value conversion are shared."""

    engine: Engine

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _ref(self, table: TableRef) -> TableRef:
        return table

    def columns(self, table: TableRef) -> dict[str, str]:
        """Column name -> type of ``table`` (empty when it does not exist)."""
        rows = self._query(columns_sql(self.engine, self._ref(table)))
        return {str(name): str(kind) for name, kind in rows}

    def changed_rows(
        self,
        table: TableRef,
        *,
        id_column: str,
        timestamp_column: str,
        fields: Sequence[str],
        after: Watermark | None,
        since_ms: int | None,
        chunk: int,
    ) -> Iterator[list[ChangedRow]]:
        """Rows after ``after`` (else from ``since_ms``), oldest first, ``chunk`` at a time.

        Raises:
            WarehouseError: unreachable, or the table or a column is missing.
        """
        ref = self._ref(table)
        present = self.columns(table)
        missing = [c for c in (id_column, timestamp_column, *fields) if c not in present]
        if not present:
            raise WarehouseError(f"table {table.schema}.{table.table} does not exist")
        if missing:
            raise WarehouseError(
                f"table {table.schema}.{table.table} has no column {', '.join(missing)}"
            )
        while True:
            sql = changed_rows_sql(
                self.engine, ref, id_column=id_column, timestamp_column=timestamp_column,
                fields=list(fields), after=after, since_ms=since_ms, limit=chunk,
            )  # fmt: skip
            batch = [
                ChangedRow(
                    str(row[0]),
                    _epoch_ms(row[1]),
                    {f: _json_value(v) for f, v in zip(fields, row[2:], strict=True)},
                )
                for row in self._query(sql)
            ]
            if not batch:
                return
            yield batch
            after = Watermark(batch[-1].ts_ms, batch[-1].id)
            if len(batch) < chunk:
                return

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class DuckDBWarehouse(Warehouse):
    """A DuckDB file, read-only for the run. A batch source's ``database`` is the file's
    catalog, its stem."""

    engine: Engine = "duckdb"

    def __init__(self, path: str) -> None:
        import duckdb  # the edge: imported only when a DuckDB warehouse is used

        if not Path(path).exists():
            raise WarehouseError(f"DuckDB warehouse file {path} does not exist")
        try:
            self._conn = duckdb.connect(path, read_only=True)
            self._conn.execute("SET TimeZone = 'UTC'")
        except duckdb.Error as exc:
            raise WarehouseError(f"DuckDB warehouse {path}: {exc}") from exc
        self._error = duckdb.Error

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        try:
            return self._conn.execute(sql).fetchall()
        except self._error as exc:
            raise WarehouseError(f"DuckDB: {exc}") from exc

    def close(self) -> None:
        self._conn.close()


class PostgresWarehouse(Warehouse):
    """A PostgreSQL database (the URL's); a batch source's ``database`` must name it."""

    engine: Engine = "postgres"

    def __init__(self, url: WarehouseUrl) -> None:
        import psycopg  # the edge

        try:
            self._conn = psycopg.connect(url.url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:  # the message may quote the URL: redact
            raise WarehouseError(f"PostgreSQL {url.safe} is unreachable") from exc
        self._conn.execute("SET TIME ZONE 'UTC'")
        self._database = url.path
        self._error = psycopg.Error

    def _ref(self, table: TableRef) -> TableRef:
        if table.database not in (None, self._database):
            raise WarehouseError(
                f"batch_source.database {table.database!r}: the connection is to database "
                f"{self._database!r}"
            )
        return TableRef(None, table.schema, table.table)

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        try:
            with self._conn.cursor() as cursor:
                cursor.execute(sql.encode())
                return cursor.fetchall()
        except self._error as exc:
            raise WarehouseError(f"PostgreSQL: {exc}") from exc

    def close(self) -> None:
        self._conn.close()


def open_warehouse(url: str) -> Warehouse:
    """Connect to the warehouse of ``SIGNALS_WAREHOUSE_URL``.

    Raises:
        ConfigurationError: a bad URL, or an engine whose connector is not installed.
        WarehouseError: it cannot be reached.
    """
    parsed = parse_warehouse_url(url)
    if parsed.engine == "duckdb":
        return DuckDBWarehouse(parsed.path)
    if parsed.engine == "postgres":
        return PostgresWarehouse(parsed)
    raise ConfigurationError(
        f"SIGNALS_WAREHOUSE_URL: {parsed.engine} needs its official connector, which this "
        "build does not include yet (its SQL is generated: signals_stream.warehouse.sql)"
    )
