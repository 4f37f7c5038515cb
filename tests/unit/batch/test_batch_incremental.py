"""Incremental batch runs: after appending events (a quarter of them old events loaded late),
a run that merges their states into the stored ones equals a full recomputation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest

from signals_stream.batch.compile import DEFAULT_EVENTS_TABLE, EventsTable, compile_group
from signals_stream.batch.incremental import INCREMENTAL_AGGREGATIONS, not_incremental
from signals_stream.batch.run import run_batch
from signals_stream.definitions import AttributeGroup
from tests.batch_events import column_types, load_duckdb, load_postgres, typed_csv
from tests.postgres_server import postgres_server
from tests.unit.batch.ecommerce_group import batch_group

TABLE = "signals.ecom_incremental_1_attributes"


def incremental_group() -> AttributeGroup:
    """The reference group's lifetime attributes without TTL that merge from states."""
    full = batch_group()
    chosen = [
        a.to_wire()
        for a in full.attributes or ()
        if a.period is None and a.ttl is None and a.aggregation in INCREMENTAL_AGGREGATIONS
    ]
    return AttributeGroup.parse(
        {**full.to_wire(), "name": "ecom_incremental", "attributes": chosen}
    )


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    """``atomic.events`` with a ``load_tstamp``; a quarter of the events (old ones among
    them) are held back in ``atomic.late``, to be loaded later."""
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        load_duckdb(con, typed_csv(tmp_path))
        con.execute("ALTER TABLE atomic.events ADD COLUMN load_tstamp TIMESTAMPTZ")
        con.execute("UPDATE atomic.events SET load_tstamp = collector_tstamp + INTERVAL 1 MINUTE")
        con.execute(
            "CREATE TABLE atomic.late AS SELECT * REPLACE "
            "(TIMESTAMPTZ '2023-06-01 00:00:00+00' AS load_tstamp) "
            "FROM atomic.events WHERE hash(event_id) % 4 = 0"
        )
        con.execute("DELETE FROM atomic.events WHERE hash(event_id) % 4 = 0")
    return path


def _rows(path: Path) -> dict[str, tuple[Any, ...]]:
    with duckdb.connect(str(path), read_only=True) as con:
        cursor = con.execute(f"SELECT * FROM {TABLE}")
        names = [d[0] for d in cursor.description]
        return {r[0]: r[: names.index("computed_at")] for r in cursor.fetchall()}


def _close(a: dict[str, tuple[Any, ...]], b: dict[str, tuple[Any, ...]]) -> bool:
    """Equal, floats to 12 digits (sums of floats depend on the order of addition)."""
    if set(a) != set(b):
        return False
    return all(
        x == pytest.approx(y, rel=1e-12) if isinstance(x, float) else x == y
        for k in a
        for x, y in zip(a[k], b[k], strict=True)
    )


def _full(path: Path, now_ms: int) -> dict[str, tuple[Any, ...]]:
    with duckdb.connect(str(path), read_only=True) as con:
        table = EventsTable.of(DEFAULT_EVENTS_TABLE, column_types(con), "duckdb")
        query = compile_group(incremental_group(), table, dialect="duckdb", now_ms=now_ms)
        return {r[0]: r[:-1] for r in con.execute(query.sql).fetchall()}


def test_an_incremental_run_equals_a_full_recomputation(warehouse: Path) -> None:
    group = incremental_group()
    assert not_incremental(group) is None and len(group.attributes or ()) >= 20
    url = f"duckdb:///{warehouse}"
    now = int(time.time() * 1000)
    first = run_batch(group, url, DEFAULT_EVENTS_TABLE, "signals", now_ms=now)
    assert first.mode == "full (states rebuilt)"
    assert _close(_rows(warehouse), _full(warehouse, now))
    with duckdb.connect(str(warehouse)) as con:
        con.execute("INSERT INTO atomic.events SELECT * FROM atomic.late")
        (late,) = con.execute("SELECT COUNT(*) FROM atomic.late").fetchone() or (0,)
    assert late > 150  # a quarter of the events come late, older ones among them
    second = run_batch(group, url, DEFAULT_EVENTS_TABLE, "signals", now_ms=now)
    assert second.mode == "incremental" and second.rows == 59
    assert _close(_rows(warehouse), _full(warehouse, now))
    assert _rows(warehouse) != {}  # and the comparison compared something
    third = run_batch(group, url, DEFAULT_EVENTS_TABLE, "signals", now_ms=now)  # nothing new
    assert third.mode == "incremental" and _close(_rows(warehouse), _full(warehouse, now))
    forced = run_batch(group, url, DEFAULT_EVENTS_TABLE, "signals", now_ms=now, full=True)
    assert forced.mode == "full (states rebuilt)"
    assert _close(_rows(warehouse), _full(warehouse, now))


def test_groups_that_cannot_merge_states_are_recomputed_in_full(warehouse: Path) -> None:
    result = run_batch(batch_group(), f"duckdb:///{warehouse}", DEFAULT_EVENTS_TABLE, "signals")
    assert result.mode.startswith("full (attribute ") and result.rows > 0


@pytest.fixture
def postgres_warehouse(tmp_path: Path) -> Iterator[str]:
    """The same events in PostgreSQL, a quarter held back in ``atomic.late``."""
    con = duckdb.connect()
    load_duckdb(con, typed_csv(tmp_path))
    con.execute("ALTER TABLE atomic.events ADD COLUMN load_tstamp TIMESTAMPTZ")
    con.execute("UPDATE atomic.events SET load_tstamp = collector_tstamp + INTERVAL 1 MINUTE")
    exported = tmp_path / "with_load.csv"
    con.execute(f"COPY atomic.events TO '{exported}' (HEADER, DELIMITER ',')")
    with postgres_server() as url:
        load_postgres(url, exported, column_types(con))
        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute(
                "CREATE TABLE atomic.late AS SELECT * FROM atomic.events WHERE md5(event_id) < '4'"
            )
            pg.execute("UPDATE atomic.late SET load_tstamp = '2023-06-01 00:00:00+00'")
            pg.execute("DELETE FROM atomic.events WHERE md5(event_id) < '4'")
        yield url


def test_incremental_runs_in_postgres_equal_a_full_recomputation(postgres_warehouse: str) -> None:
    url, group, now = postgres_warehouse, incremental_group(), int(time.time() * 1000)
    assert run_batch(group, url, DEFAULT_EVENTS_TABLE, "signals", now_ms=now).rows > 0
    with psycopg.connect(url, autocommit=True) as pg:
        pg.execute("INSERT INTO atomic.events SELECT * FROM atomic.late")
    assert run_batch(group, url, DEFAULT_EVENTS_TABLE, "signals", now_ms=now).mode == "incremental"
    with psycopg.connect(url) as pg:
        pg.execute("SET TIME ZONE 'UTC'")
        got = {r[0]: r[:-1] for r in pg.execute(f"SELECT * FROM {TABLE}").fetchall()}
        types = dict(
            pg.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'atomic' AND table_name = 'events'"
            ).fetchall()
        )
        table = EventsTable.of(DEFAULT_EVENTS_TABLE, types, "postgres")
        query = compile_group(group, table, dialect="postgres", now_ms=now)
        full = {r[0]: r[:-1] for r in pg.execute(query.sql.encode()).fetchall()}
    assert len(got) == 59 and _close(got, full)
