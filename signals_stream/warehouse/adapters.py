"""Warehouse adapters: one small interface, one implementation per engine (the edge).

:class:`Warehouse` is all the sync needs: the columns of a table, and the rows changed after a
watermark in bounded chunks (the SQL comes from :mod:`signals_stream.warehouse.sql`, the same
builder for every dialect). Every adapter holds one DB-API 2 connection (:class:`DbApiWarehouse`)
and differs only in how it connects:

- DuckDB, the embedded default, opened read-only, so the tools that load it can keep writing
  between runs;
- PostgreSQL through psycopg, its session in UTC;
- Snowflake (``snowflake-connector-python``, extra ``[snowflake]``), its session in UTC;
- BigQuery (``google-cloud-bigquery``'s DB-API, extra ``[bigquery]``; timestamps are UTC).

Each connector is imported only when its engine is used, so the others need not be installed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple, Protocol, Self
from urllib.parse import parse_qsl, unquote, urlsplit

from signals_stream.errors import ConfigurationError, SignalsStreamError
from signals_stream.warehouse.sql import TableRef, Watermark, changed_rows_sql, columns_sql
from signals_stream.warehouse.urls import Engine, WarehouseUrl, parse_warehouse_url

__all__ = [
    "ChangedRow",
    "BigQueryWarehouse",
    "DbApiWarehouse",
    "DuckDBWarehouse",
    "PostgresWarehouse",
    "SnowflakeWarehouse",
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

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows of a read-only query (the warehouse backfill's states)."""
        return self._query(sql)

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


class _Cursor(Protocol):
    def execute(self, operation: Any) -> Any: ...
    def fetchall(self) -> Any: ...
    def close(self) -> Any: ...


class _Connection(Protocol):
    def cursor(self) -> Any: ...
    def close(self) -> Any: ...


class DbApiWarehouse(Warehouse):
    """A warehouse reached through one DB-API 2 connection: a query is a cursor's
    ``execute`` and ``fetchall``; the connector's ``Error`` becomes a :class:`WarehouseError`
    named after the engine."""

    label: str

    def __init__(self, conn: _Connection, error: type[Exception]) -> None:
        self._conn, self._error = conn, error

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        try:
            cursor: _Cursor = self._conn.cursor()
            try:
                cursor.execute(self._statement(sql))
                return [tuple(row) for row in cursor.fetchall()]
            finally:
                cursor.close()
        except self._error as exc:
            raise WarehouseError(f"{self.label}: {exc}") from exc

    def _statement(self, sql: str) -> Any:
        return sql

    def close(self) -> None:
        self._conn.close()


def _connector(module: str, extra: str) -> Any:
    """Import an optional connector, or say which extra provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigurationError(
            f"SIGNALS_WAREHOUSE_URL: {extra} needs its official connector: "
            f"pip install 'signals-stream[{extra}]'"
        ) from exc


class DuckDBWarehouse(DbApiWarehouse):
    """A DuckDB file, read-only for the run. A batch source's ``database`` is the file's
    catalog, its stem."""

    engine: Engine = "duckdb"
    label = "DuckDB"

    def __init__(self, path: str) -> None:
        import duckdb  # the edge: imported only when a DuckDB warehouse is used

        if not Path(path).exists():
            raise WarehouseError(f"DuckDB warehouse file {path} does not exist")
        try:
            conn = duckdb.connect(path, read_only=True)
            conn.execute("SET TimeZone = 'UTC'")
        except duckdb.Error as exc:
            raise WarehouseError(f"DuckDB warehouse {path}: {exc}") from exc
        super().__init__(conn, duckdb.Error)


class PostgresWarehouse(DbApiWarehouse):
    """A PostgreSQL database (the URL's); a batch source's ``database`` must name it."""

    engine: Engine = "postgres"
    label = "PostgreSQL"

    def __init__(self, url: WarehouseUrl) -> None:
        import psycopg  # the edge

        try:
            conn = psycopg.connect(url.url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:  # the message may quote the URL: redact
            raise WarehouseError(f"PostgreSQL {url.safe} is unreachable") from exc
        conn.execute("SET TIME ZONE 'UTC'")
        self._database = url.path
        super().__init__(conn, psycopg.Error)

    def _ref(self, table: TableRef) -> TableRef:
        if table.database not in (None, self._database):
            raise WarehouseError(
                f"batch_source.database {table.database!r}: the connection is to database "
                f"{self._database!r}"
            )
        return TableRef(None, table.schema, table.table)

    def _statement(self, sql: str) -> Any:
        return sql.encode()  # bytes: psycopg reads no placeholders in them


def snowflake_connect_args(url: WarehouseUrl) -> dict[str, Any]:
    """``snowflake://user:password@account/database?warehouse=WH&role=R`` as the keyword
    arguments of ``snowflake.connector.connect`` (the query's other parameters pass through,
    e.g. ``authenticator``, ``private_key_file``); the session in UTC."""
    parts = urlsplit(url.url)
    args: dict[str, Any] = dict(parse_qsl(parts.query))
    args |= {"account": parts.hostname or "", "user": unquote(parts.username or "")}
    if parts.password is not None:
        args["password"] = unquote(parts.password)
    if url.path:
        args["database"] = url.path
    args["session_parameters"] = {"TIMEZONE": "UTC"}
    return args


class SnowflakeWarehouse(DbApiWarehouse):
    """Snowflake through its official connector. A batch source names ``database.schema
    .table`` in full, so the URL's database is optional."""

    engine: Engine = "snowflake"
    label = "Snowflake"

    def __init__(self, url: WarehouseUrl) -> None:
        connector = _connector("snowflake.connector", "snowflake")
        try:
            conn = connector.connect(**snowflake_connect_args(url))
        except connector.Error as exc:  # may quote the account and user, never the password
            raise WarehouseError(f"Snowflake {url.safe} is unreachable: {exc}") from exc
        super().__init__(conn, connector.Error)


def bigquery_client_args(url: WarehouseUrl) -> dict[str, Any]:
    """``bigquery://project?location=EU`` as ``google.cloud.bigquery.Client`` arguments
    (credentials: Application Default Credentials, e.g. ``GOOGLE_APPLICATION_CREDENTIALS``)."""
    parts = urlsplit(url.url)
    return {**dict(parse_qsl(parts.query)), "project": parts.hostname or None}


class BigQueryWarehouse(DbApiWarehouse):
    """BigQuery through ``google-cloud-bigquery``'s DB-API. A batch source's ``database`` is
    the project, its ``schema`` the dataset."""

    engine: Engine = "bigquery"
    label = "BigQuery"

    def __init__(self, url: WarehouseUrl) -> None:
        bigquery = _connector("google.cloud.bigquery", "bigquery")
        dbapi = _connector("google.cloud.bigquery.dbapi", "bigquery")
        try:
            conn = dbapi.connect(bigquery.Client(**bigquery_client_args(url)))
        except Exception as exc:  # google.auth errors too: no credentials, bad project
            raise WarehouseError(f"BigQuery {url.safe}: {exc.__class__.__name__}: {exc}") from exc
        super().__init__(conn, dbapi.Error)


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
    if parsed.engine == "snowflake":
        return SnowflakeWarehouse(parsed)
    return BigQueryWarehouse(parsed)
