"""The warehouse adapters on real databases: a DuckDB file, and a PostgreSQL server the test
starts. Rows are inserted by the test; what comes back is compared with them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from signals_stream.warehouse import TableRef, Warehouse, WarehouseError, Watermark, open_warehouse
from tests.postgres_server import postgres_table

T0 = dt.datetime(2026, 12, 1, 10, 0, 0, tzinfo=dt.UTC)
# (id, updated_at, ltv, tier): three rows share one timestamp, so a chunk of 2 splits them.
ROWS = [
    ("c1", T0, 10.5, "gold"),
    ("c2", T0 + dt.timedelta(minutes=1), 20.0, "silver"),
    ("c3", T0 + dt.timedelta(minutes=1), None, "bronze"),
    ("c4", T0 + dt.timedelta(minutes=1), 40.25, "gold"),
    ("c5", T0 + dt.timedelta(minutes=2), 50.0, None),
]
CREATE = "CREATE TABLE crm.customers (id TEXT, updated_at {ts}, ltv DOUBLE PRECISION, tier TEXT)"


def ms(t: dt.datetime) -> int:
    return int(t.timestamp() * 1000)


def duckdb_warehouse(tmp_path: Path, naive: bool = True) -> tuple[str, Callable[[list[Any]], None]]:
    path = tmp_path / "wh.duckdb"
    conn = duckdb.connect(str(path))
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute("CREATE SCHEMA crm")
    conn.execute(CREATE.format(ts="TIMESTAMP" if naive else "TIMESTAMPTZ"))
    conn.close()

    def insert(rows: list[Any]) -> None:
        with duckdb.connect(str(path)) as c:  # written between runs, as a loader would
            c.execute("SET TimeZone = 'UTC'")
            for id_, t, ltv, tier in rows:
                when = t.replace(tzinfo=None) if naive else t
                c.execute("INSERT INTO crm.customers VALUES (?, ?, ?, ?)", [id_, when, ltv, tier])

    return f"duckdb:///{path}", insert


@pytest.fixture(params=["duckdb", "duckdb-tz", "postgres"])
def warehouse(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, str, Callable[[list[Any]], None]]]:
    """(url, database, insert rows)."""
    if request.param.startswith("duckdb"):
        url, insert = duckdb_warehouse(tmp_path, naive=request.param == "duckdb")
        yield url, "wh", insert
        return
    with postgres_table(CREATE.format(ts="TIMESTAMP")) as (url, insert):  # naive: read as UTC
        yield url, "postgres", insert


def read_all(wh: Warehouse, database: str, after: Watermark | None, chunk: int) -> list[list[Any]]:
    return [
        [(r.id, r.ts_ms, r.values["ltv"], r.values["tier"]) for r in batch]
        for batch in wh.changed_rows(
            TableRef(database, "crm", "customers"), id_column="id",
            timestamp_column="updated_at", fields=["ltv", "tier"], after=after,
            since_ms=None, chunk=chunk,
        )
    ]  # fmt: skip


def expected(rows: list[Any]) -> list[Any]:
    return sorted(((i, ms(t), ltv, tier) for i, t, ltv, tier in rows), key=lambda r: (r[1], r[0]))


@pytest.mark.timeout(120)
def test_changed_rows_in_chunks_after_a_watermark(
    warehouse: tuple[str, str, Callable[[list[Any]], None]],
) -> None:
    url, database, insert = warehouse
    insert(ROWS)
    with open_warehouse(url) as wh:
        assert set(wh.columns(TableRef(database, "crm", "customers"))) == {
            "id", "updated_at", "ltv", "tier",
        }  # fmt: skip
        chunks = read_all(wh, database, None, chunk=2)
    assert [len(c) for c in chunks] == [2, 2, 1]  # bounded chunks
    assert [r for c in chunks for r in c] == expected(ROWS)  # none skipped or repeated
    # After the last row read, only what is newer (or same time, larger id) comes back.
    mark = Watermark(ms(ROWS[3][1]), "c4")
    later = [("c6", T0 + dt.timedelta(minutes=1), 1.0, "x"), ("c0", T0, 2.0, "y")]
    insert(later)
    with open_warehouse(url) as wh:
        again = [r for c in read_all(wh, database, mark, chunk=100) for r in c]
    # c6 shares c4's timestamp with a larger id; c0 is older than the watermark (missed, as in
    # Signals: the timestamp must be a write time).
    assert again == expected([ROWS[4], later[0]])


def test_missing_table_or_column_is_a_clear_error(tmp_path: Path) -> None:
    url, _ = duckdb_warehouse(tmp_path)
    with open_warehouse(url) as wh:
        with pytest.raises(WarehouseError, match="does not exist"):
            list(wh.changed_rows(
                TableRef("wh", "crm", "nothing"), id_column="id", timestamp_column="updated_at",
                fields=["ltv"], after=None, since_ms=None, chunk=10,
            ))  # fmt: skip
        with pytest.raises(WarehouseError, match="no column score"):
            list(wh.changed_rows(
                TableRef("wh", "crm", "customers"), id_column="id", timestamp_column="updated_at",
                fields=["score"], after=None, since_ms=None, chunk=10,
            ))  # fmt: skip
    with pytest.raises(WarehouseError, match="does not exist"):
        open_warehouse(f"duckdb:///{tmp_path}/absent.duckdb")


def test_an_unreachable_postgres_never_shows_the_password() -> None:
    from signals_stream.devtools.broker import free_port

    with pytest.raises(WarehouseError) as caught:
        open_warehouse(f"postgresql://u:hunter2@127.0.0.1:{free_port()}/db")
    assert "hunter2" not in str(caught.value) and "u:***@" in str(caught.value)
