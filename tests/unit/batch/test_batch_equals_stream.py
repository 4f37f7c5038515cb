"""The batch SQL of a group equals the stream's values over the same events, for every entity.

The 834 ecommerce events are loaded into DuckDB and PostgreSQL (``tests/batch_events``); the
stream side folds the same events, rebuilt as enriched TSV by ``tests/dbt_seeds``, through
the stream engine's own replay (``engine.history.fold_on_event_time``, each event at its
event time) and reads every attribute at the same ``now``. The group
(``ecommerce_group``) covers every aggregation and property kind.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest

from signals_stream.aggregations import iso_utc
from signals_stream.batch.compile import DEFAULT_EVENTS_TABLE, EventsTable, compile_group
from signals_stream.engine import Catalog, read_group
from signals_stream.engine.history import fold_on_event_time
from signals_stream.events.parse import parse_tsv
from tests.batch_events import column_types, load_duckdb, load_postgres, typed_csv
from tests.dbt_seeds import ECOMMERCE_SEED, seed_tsv
from tests.postgres_server import postgres_server
from tests.unit.batch.ecommerce_group import stream_group

GROUP = stream_group()
APPROXIMATE = {"distinct_products", "active_weeks"}  # HyperLogLog in the stream


def _events() -> list[Any]:
    return [parse_tsv(line) for line in seed_tsv(ECOMMERCE_SEED)]


NOW_MS = max(e.event_time_ms for e in _events()) + 15 * 60_000


def stream_values(now_ms: int) -> dict[str, dict[str, Any]]:
    """Every entity's attributes as the stream engine computes them."""
    catalog = Catalog.build([GROUP])
    published = catalog.group(GROUP.name, GROUP.version)
    key = catalog.programs["domain_userid"].key
    by_id: dict[str, list[Any]] = {}
    for event in _events():
        entity = key.key_value(event)
        if entity:
            by_id.setdefault(entity, []).append(event)
    values = {}
    for entity, events in by_id.items():
        row = fold_on_event_time(catalog, "domain_userid", entity, events).row
        values[entity] = read_group(row, published, now_ms)
    return values


def _normal(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return iso_utc(value)
    if isinstance(value, str) and value.startswith("{"):
        return json.loads(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _same(name: str, batch: Any, stream: Any) -> bool:
    if name in APPROXIMATE:
        return abs(batch - stream) <= max(1, 0.02 * batch)
    if isinstance(stream, float) or isinstance(batch, float):
        return (
            batch is not None and stream is not None and math.isclose(batch, stream, rel_tol=1e-9)
        )
    return bool(batch == stream)


def _compare(
    rows: list[tuple[Any, ...]], columns: list[str], now_ms: int
) -> dict[str, dict[str, Any]]:
    """Assert the batch rows equal the stream's values; returns the stream's."""
    expected = stream_values(now_ms)
    got = {row[0]: dict(zip(columns[1:], map(_normal, row[1:]), strict=True)) for row in rows}
    assert set(got) == set(expected)
    mismatches = [
        (entity, name, got[entity][name], value)
        for entity, values in expected.items()
        for name, value in values.items()
        if not _same(name, got[entity][name], value)
    ]
    assert ", ".join(sorted({name for _, name, _, _ in mismatches})) == ""  # which differ
    assert mismatches == []
    return expected


def _assert_varied(expected: dict[str, dict[str, Any]]) -> None:
    """The group really exercises its attributes: these differ between entities."""
    varied = ("price_sum", "categories", "action_counts", "busiest_hour", "session_events",
              "recent_events", "path_and_category", "biggest_line", "big_carts_mean")  # fmt: skip
    for name in varied:
        assert len({json.dumps(v[name], sort_keys=True) for v in expected.values()}) > 1, name


@pytest.fixture(scope="module")
def typed_events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return typed_csv(tmp_path_factory.mktemp("batch"))


def _duckdb(csv_path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    load_duckdb(con, csv_path)
    return con


def _run_duckdb(csv_path: Path, now_ms: int) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The group's batch query on DuckDB: column names and rows, without ``computed_at``."""
    con = _duckdb(csv_path)
    table = EventsTable.of(DEFAULT_EVENTS_TABLE, column_types(con), "duckdb")
    query = compile_group(GROUP, table, dialect="duckdb", now_ms=now_ms)
    cursor = con.execute(query.sql)
    columns = [d[0] for d in cursor.description]
    assert columns == ["domain_userid", *query.attribute_columns, "computed_at"]
    return columns[:-1], [row[:-1] for row in cursor.fetchall()]


def test_duckdb_batch_values_equal_the_streams_for_every_entity(typed_events: Path) -> None:
    columns, rows = _run_duckdb(typed_events, NOW_MS)
    _assert_varied(_compare(rows, columns, NOW_MS))


def test_a_later_now_expires_ttls_and_empties_periods_as_the_stream(typed_events: Path) -> None:
    later = NOW_MS + 40 * 86_400_000
    columns, rows = _run_duckdb(typed_events, later)
    _compare(rows, columns, later)
    by_name = {c: i for i, c in enumerate(columns)}
    assert {row[by_name["recent_events"]] for row in rows} == {0}
    assert {row[by_name["session_events"]] for row in rows} == {0}
    assert {row[by_name["weekly_actions"]] for row in rows} == {"{}"}


@pytest.fixture(scope="module")
def postgres_events(typed_events: Path) -> Iterator[tuple[str, dict[str, str]]]:
    types = column_types(_duckdb(typed_events))
    with postgres_server() as url:
        load_postgres(url, typed_events, types)
        with psycopg.connect(url) as conn:
            pg_types = dict(
                conn.execute(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = 'atomic' AND table_name = 'events'"
                ).fetchall()
            )
        yield url, pg_types


def test_postgres_batch_values_equal_the_streams_for_every_entity(
    postgres_events: tuple[str, dict[str, str]],
) -> None:
    url, types = postgres_events
    query = compile_group(
        GROUP,
        EventsTable.of(DEFAULT_EVENTS_TABLE, types, "postgres"),
        dialect="postgres",
        now_ms=NOW_MS,
    )
    with psycopg.connect(url) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        cursor = conn.execute(query.sql.encode())
        columns = [d.name for d in cursor.description or ()]
        rows = [row[:-1] for row in cursor.fetchall()]
    _assert_varied(_compare(rows, columns[:-1], NOW_MS))
