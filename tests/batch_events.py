"""The ecommerce seed as a Snowplow atomic events table, for the batch engine's tests.

Two shapes of the same 834 events:

* :func:`load_raw_duckdb`: the CSV exactly as it is, through DuckDB's ``read_csv_auto`` (the
  warehouse's stringified values, ``"price": "12.0"``).
* :func:`typed_csv`: the values as the tracker sent them and as the stream reads them from
  ``tests/dbt_seeds`` (numbers and booleans typed, ``null`` members dropped, event ids as
  the TSV has them), with the product entities of every third event moved to a
  ``..._product_1_1_0`` column, so a property must read every minor version of its major.
  :func:`load_duckdb` and :func:`load_postgres` load it into ``atomic.events``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import psycopg

from tests.datafiles import DATA_DIR
from tests.dbt_seeds import ECOMMERCE_SEED, SEED_COLUMNS, seed_event_id, seed_rows

__all__ = [
    "PRODUCT_1_0_0",
    "PRODUCT_1_1_0",
    "column_types",
    "load_duckdb",
    "load_postgres",
    "load_raw_duckdb",
    "typed_csv",
]

PRODUCT_1_0_0 = "contexts_com_snowplowanalytics_snowplow_ecommerce_product_1_0_0"
PRODUCT_1_1_0 = "contexts_com_snowplowanalytics_snowplow_ecommerce_product_1_1_0"


def _typed_cell(column: str, text: str) -> str:
    spec = SEED_COLUMNS[column]
    if not text:
        return ""
    value = json.loads(text)
    items = value if isinstance(value, list) else [value]
    typed = []
    for item in items:
        out = {}
        for key, member in item.items():
            if member is None:
                continue
            kind = spec.typed.get(key)
            if kind is not None and isinstance(member, str):
                if kind == "boolean":
                    member = member.lower() == "true"
                else:
                    number = float(member)
                    member = int(number) if number.is_integer() else number
            out[key] = member
        typed.append(out)
    if spec.kind == "unstruct_event":
        return json.dumps(typed[0]) if typed else ""
    return json.dumps(typed)


def typed_csv(directory: Path) -> Path:
    """Write the typed events CSV (see the module docstring) into ``directory``."""
    rows = seed_rows(ECOMMERCE_SEED)
    header = [c for c in rows[0] if c != PRODUCT_1_0_0] + [PRODUCT_1_0_0, PRODUCT_1_1_0]
    path = directory / "events.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        for n, row in enumerate(rows):
            out = dict(row)
            out["event_id"] = seed_event_id(row["event_id"])
            for column in row:
                if column.startswith(("contexts_", "unstruct_event_")):
                    out[column] = _typed_cell(column, row[column])
            out[PRODUCT_1_1_0] = "[]"
            if n % 3 == 0:
                out[PRODUCT_1_1_0], out[PRODUCT_1_0_0] = out[PRODUCT_1_0_0], "[]"
            writer.writerow(out)
    return path


def _create_atomic(con: duckdb.DuckDBPyConnection, source: str) -> None:
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE SCHEMA IF NOT EXISTS atomic")
    con.execute(f"CREATE TABLE atomic.events AS SELECT * FROM read_csv_auto('{source}')")


def load_raw_duckdb(con: duckdb.DuckDBPyConnection) -> None:
    """``atomic.events`` = the seed CSV as is."""
    _create_atomic(con, str(DATA_DIR / ECOMMERCE_SEED))


def load_duckdb(con: duckdb.DuckDBPyConnection, csv_path: Path) -> None:
    """``atomic.events`` = the typed CSV."""
    _create_atomic(con, str(csv_path))


def column_types(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """``atomic.events``' columns, as information_schema names them."""
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'atomic' AND table_name = 'events' ORDER BY ordinal_position"
    ).fetchall()
    return {str(name): str(kind) for name, kind in rows}


_PG_TYPES = {
    "VARCHAR": "text",
    "BIGINT": "bigint",
    "DOUBLE": "double precision",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "BOOLEAN": "boolean",
}


def load_postgres(url: str, csv_path: Path, types: dict[str, str]) -> None:
    """``atomic.events`` in PostgreSQL: the typed CSV with DuckDB's inferred column types,
    self-describing columns as ``jsonb`` (as a loader would)."""
    columns = []
    for name, kind in types.items():
        pg = "jsonb" if name.startswith(("contexts_", "unstruct_event_")) else _PG_TYPES[kind]
        columns.append(f'"{name}" {pg}')
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA atomic")
        conn.execute(f"CREATE TABLE atomic.events ({', '.join(columns)})".encode())
        names = ", ".join(f'"{n}"' for n in types)
        with conn.cursor() as cursor:
            copy_sql = f"COPY atomic.events ({names}) FROM STDIN WITH (FORMAT csv, HEADER true)"
            with cursor.copy(copy_sql.encode()) as copy:
                copy.write(csv_path.read_bytes())
