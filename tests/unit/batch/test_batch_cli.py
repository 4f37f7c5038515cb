"""``signals-stream batch run`` writes ``<schema>.<group>_<version>_attributes`` in DuckDB and
PostgreSQL (one row per entity, a ``computed_at`` column, replaced by the next run), and
``batch sql`` prints SQL for another warehouse from a column list."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import duckdb
import psycopg
import pytest
import sqlglot

from signals_stream.cli import main
from tests.batch_events import column_types, load_duckdb, load_postgres, typed_csv
from tests.dbt_seeds import ECOMMERCE_SEED, seed_rows
from tests.postgres_server import postgres_server
from tests.unit.batch.ecommerce_group import GROUP_FILE

TABLE = "signals.ecom_batch_1_attributes"


def _events_by_user() -> Counter[str]:
    return Counter(r["domain_userid"] for r in seed_rows(ECOMMERCE_SEED) if r["domain_userid"])


@pytest.fixture
def duckdb_file(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        load_duckdb(con, typed_csv(tmp_path))
    return path


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    assert main(["batch", "run", "ecom_batch", "--definitions", str(GROUP_FILE), *args]) == 0
    return dict(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))


def test_batch_run_writes_the_attributes_table_in_duckdb(
    duckdb_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SIGNALS_WAREHOUSE_URL", f"duckdb:///{duckdb_file}")
    result = _run([], capsys)
    expected = _events_by_user()
    assert result["table"] == TABLE and result["rows"] == len(expected) == 59
    with duckdb.connect(str(duckdb_file), read_only=True) as con:
        names = [r[0] for r in con.execute(f"DESCRIBE {TABLE}").fetchall()]
        assert names[0] == "domain_userid" and names[-1] == "computed_at" and len(names) == 50
        counts = dict(con.execute(f"SELECT domain_userid, events FROM {TABLE}").fetchall())
        stamps = {r[0] for r in con.execute(f"SELECT computed_at FROM {TABLE}").fetchall()}
    assert counts == dict(expected)
    assert len(stamps) == 1  # one run, one time
    again = _run([], capsys)  # the next run replaces the table, it does not append
    assert again["rows"] == 59
    with duckdb.connect(str(duckdb_file), read_only=True) as con:
        assert con.execute(f"SELECT COUNT(*) FROM {TABLE}").fetchone() == (59,)


def test_a_missing_events_table_fails_the_run_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "empty.duckdb"
    duckdb.connect(str(path)).close()
    monkeypatch.setenv("SIGNALS_WAREHOUSE_URL", f"duckdb:///{path}")
    code = main(["batch", "run", "ecom_batch", "--definitions", str(GROUP_FILE)])
    assert code == 1
    assert "table atomic.events does not exist" in capsys.readouterr().err
    assert main(["batch", "run", "nope", "--definitions", str(GROUP_FILE)]) == 1
    assert "no attribute group 'nope'" in capsys.readouterr().err


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    csv_path = typed_csv(tmp_path)
    con = duckdb.connect()
    load_duckdb(con, csv_path)
    with postgres_server() as url:
        load_postgres(url, csv_path, column_types(con))
        yield url


def test_batch_run_writes_the_attributes_table_in_postgres(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SIGNALS_WAREHOUSE_URL", postgres_url)
    result = _run(["--events-table", "atomic.events"], capsys)
    assert result["rows"] == 59
    with psycopg.connect(postgres_url) as conn:
        counts: dict[str, int] = dict(
            conn.execute(f"SELECT domain_userid, events FROM {TABLE}").fetchall()
        )
        kinds: dict[str, str] = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'signals' AND table_name = 'ecom_batch_1_attributes'"
            ).fetchall()
        )
    assert counts == dict(_events_by_user())
    assert kinds["computed_at"] == "timestamp with time zone"
    assert kinds["categories"] == "ARRAY" and kinds["action_counts"] == "jsonb"


def test_batch_sql_prints_snowflake_sql_from_a_column_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SIGNALS_WAREHOUSE_URL", f"duckdb:///{tmp_path / 'none.duckdb'}")
    columns = tmp_path / "columns.txt"
    columns.write_text(
        "event_id TEXT\ndomain_userid TEXT\nderived_tstamp TIMESTAMP_TZ\n"
        "collector_tstamp TIMESTAMP_TZ\n"
        "unstruct_event_com_snowplowanalytics_snowplow_ecommerce_snowplow_ecommerce_action_1_0_1\n"
    )
    args = ["batch", "sql", "ecom_batch", "--definitions", str(GROUP_FILE), "--dialect"]
    assert main([*args, "snowflake", "--columns", str(columns)]) == 0
    sql = capsys.readouterr().out
    tree = sqlglot.parse_one(sql.strip().rstrip(";"), read="snowflake")
    assert [e.alias_or_name for e in tree.expressions][:2] == ["domain_userid", "events"]
    assert "snowplow_ecommerce_action_1_0_1" in sql and "CURRENT_TIMESTAMP" in sql
