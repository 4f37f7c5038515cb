"""The log build's warehouse ends (``dataset build --from log`` without ``--anchors`` or
without ``--out``): user-supplied anchors read from the request's ``anchors.source`` table on
``SIGNALS_WAREHOUSE_URL``, and the dataset written to a table there, DuckDB or PostgreSQL.

Both stream: the anchors go through a server-side cursor into a DuckDB file the build reads
(``history/dataset_log.read_anchor_file``), and the built Parquet file goes into the table in
batches (PostgreSQL ``COPY``; DuckDB reads the file itself), replacing it in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlglot import exp

from signals_stream.datasets.anchors import ANCHOR_TS, LABEL
from signals_stream.datasets.models import UserSuppliedAnchors
from signals_stream.datasets.runs import anchors_table, connect, table_sql
from signals_stream.errors import DefinitionError
from signals_stream.settings import Settings
from signals_stream.warehouse import TableRef
from signals_stream.warehouse.sql import columns_sql
from signals_stream.warehouse.urls import parse_warehouse_url

__all__ = ["export_anchors", "write_table"]

_BATCH_ROWS = 10_000


def _duckdb_type(warehouse_type: str) -> str:
    """The label's column type in the anchors file, from its type on the warehouse."""
    kind = warehouse_type.lower()
    if kind.startswith("bool"):
        return "BOOLEAN"
    if kind in ("tinyint", "smallint", "integer", "int", "bigint", "hugeint"):
        return "BIGINT"
    if kind.startswith(("double", "real", "float", "numeric", "decimal")):
        return "DOUBLE"
    return "VARCHAR"


def export_anchors(
    anchors: UserSuppliedAnchors, settings: Settings, key_names: Sequence[str], out: Path
) -> int:
    """Copy the anchors table's key columns, ``anchor_ts`` and ``label`` into the DuckDB file
    ``out`` (as ``<its schema>.<its table>``: what ``read_anchor_file`` reads); the rows.
    Ids keep their NULLs and empty strings apart.

    Raises:
        DefinitionError: the table does not exist or lacks a column (naming it).
        WarehouseError: the warehouse cannot be read.
    """
    import duckdb  # the edge

    conn = connect(settings)
    try:
        ref = anchors_table(anchors, conn, settings, list(key_names))
        types = {str(n): str(t) for n, t in conn.query(columns_sql(conn.engine, ref))}
        labelled = anchors.has_label is not False
        names = [*key_names, ANCHOR_TS, *([LABEL] if labelled else [])]
        columns = ", ".join(exp.to_identifier(n, quoted=True).sql(conn.engine) for n in names)
        _, batches = conn.cursor_batches(
            f"SELECT {columns} FROM {table_sql(ref, conn.engine)}", _BATCH_ROWS
        )
        target = f'"{anchors.source.schema_ or "main"}"."{anchors.source.table}"'
        declared = [f'"{n}" VARCHAR' for n in key_names] + [f"{ANCHOR_TS} TIMESTAMPTZ"]
        if labelled:
            declared.append(f"{LABEL} {_duckdb_type(types[LABEL])}")
        written = 0
        with duckdb.connect(str(out)) as con:
            con.execute("SET TimeZone = 'UTC'")  # a naive anchor_ts is UTC, as on the warehouse
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{anchors.source.schema_ or "main"}"')
            con.execute(f"CREATE TABLE {target} ({', '.join(declared)})")
            slots = ", ".join("?" for _ in names)
            keys = len(key_names)
            for batch in batches:
                con.executemany(
                    f"INSERT INTO {target} VALUES ({slots})",
                    [[*(None if v is None else str(v) for v in row[:keys]), *row[keys:]]
                     for row in batch],
                )  # fmt: skip
                written += len(batch)
        return written
    finally:
        conn.close()


def _table_ref(table: str, settings: Settings) -> TableRef:
    schema, _, name = table.rpartition(".")
    if not name.replace("_", "").isalnum() or (schema and not schema.replace("_", "").isalnum()):
        raise DefinitionError(f"--table: {table!r} is not schema.table (letters, digits, _)")
    return TableRef(None, schema or settings.batch_schema, name)


# DuckDB's types of the built file -> PostgreSQL's (lists as arrays, as the SQL build's).
_POSTGRES_TYPES = {
    "VARCHAR": "TEXT",
    "BIGINT": "BIGINT",
    "INTEGER": "BIGINT",
    "HUGEINT": "NUMERIC",
    "DOUBLE": "DOUBLE PRECISION",
    "FLOAT": "DOUBLE PRECISION",
    "BOOLEAN": "BOOLEAN",
    "TIMESTAMP": "TIMESTAMPTZ",
    "TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ",
    "DATE": "DATE",
    "JSON": "JSONB",
}


def _postgres_type(duckdb_type: str) -> str:
    if duckdb_type.endswith("[]"):
        return _postgres_type(duckdb_type[:-2]) + "[]"
    return _POSTGRES_TYPES.get(duckdb_type, "TEXT")


def write_table(parquet: Path, table: str, settings: Settings) -> int:
    """Replace ``table`` (``schema.table``; the schema defaults to ``SIGNALS_BATCH_SCHEMA``) on
    the warehouse with the rows of ``parquet``; the rows written.

    Raises:
        DefinitionError: ``table`` is not a table name.
        WarehouseError: the warehouse refused a statement.
    """
    import duckdb  # the edge

    conn = connect(settings)
    try:
        ref = _table_ref(table, settings)
        target = table_sql(ref, conn.engine)
        schema = exp.to_identifier(ref.schema, quoted=True).sql(conn.engine)
        path = str(parquet.resolve()).replace("'", "''")
        if conn.engine == "duckdb":
            conn.replace(
                [
                    f"CREATE SCHEMA IF NOT EXISTS {schema}",
                    f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM read_parquet('{path}')",
                ]
            )
            return int(conn.query(f"SELECT COUNT(*) FROM {target}")[0][0])
    finally:
        conn.close()
    with duckdb.connect() as reader:
        reader.execute("SET TimeZone = 'UTC'")
        kinds = reader.execute(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()
        cursor = reader.execute(f"SELECT * FROM read_parquet('{path}')")
        return _copy_to_postgres(settings.warehouse, target, schema, kinds, cursor)


def _copy_to_postgres(
    url: str, target: str, schema: str, kinds: list[tuple[Any, ...]], cursor: Any
) -> int:
    import psycopg  # the edge

    from signals_stream.warehouse import WarehouseError

    names = [exp.to_identifier(str(k[0]), quoted=True).sql("postgres") for k in kinds]
    columns = ", ".join(
        f"{n} {_postgres_type(str(k[1]))}" for n, k in zip(names, kinds, strict=True)
    )
    written = 0
    try:
        with psycopg.connect(parse_warehouse_url(url).url, connect_timeout=10) as pg:
            pg.execute("SET TIME ZONE 'UTC'")
            pg.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}".encode())
            pg.execute(f"DROP TABLE IF EXISTS {target}".encode())
            pg.execute(f"CREATE TABLE {target} ({columns})".encode())
            copy_sql = f"COPY {target} ({', '.join(names)}) FROM STDIN"
            with pg.cursor().copy(copy_sql.encode()) as copy:
                while batch := cursor.fetchmany(_BATCH_ROWS):
                    for row in batch:
                        copy.write_row(row)
                    written += len(batch)
    except psycopg.Error as exc:  # the message may quote the URL: say which table
        raise WarehouseError(f"postgres: writing {target}: {exc}") from exc
    return written
