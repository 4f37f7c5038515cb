"""``signals-stream dataset sql|run|build``: a YAML spec built in DuckDB and PostgreSQL into
Parquet and CSV files whose rows equal the plain-Python rows of the CSV, and SQL for
Snowflake and BigQuery that sqlglot parses back."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot
import yaml

from signals_stream.cli import main
from tests.batch_events import load_duckdb, typed_csv
from tests.dataset_expected import ACTION, expected_session_rows, read_events
from tests.unit.batch.test_batch_cli import postgres_url  # noqa: F401  (a fixture: same events)

_VENDOR = "com.snowplowanalytics.snowplow.ecommerce"
_TYPE = {"type": "event", "vendor": _VENDOR, "name": "snowplow_ecommerce_action",
         "major_version": 1, "path": "type"}  # fmt: skip
_EVENTS = [
    {"vendor": v, "name": "snowplow_ecommerce_action"} for v in (_VENDOR, "ecommerce.tracking")
]
_SPAN = {"start_time": "2022-01-01T00:00:00Z", "end_time": "2023-01-01T00:00:00Z"}
_START, _END = (int(datetime(y, 1, 1, tzinfo=UTC).timestamp() * 1000) for y in (2022, 2023))


def _is(value: str) -> dict[str, Any]:
    return {"all": [{"property": _TYPE, "operator": "=", "value": value}]}


def _spec(tmp_path: Path, anchors: dict[str, Any], key: str = "anchors") -> Path:
    cart = {
        "type": "entity",
        "vendor": _VENDOR,
        "name": "cart",
        "major_version": 1,
        "path": "total_value",
    }
    session = {
        "name": "shop_session", "version": 1, "attribute_key": {"name": "domain_sessionid"},
        "attributes": [
            {"name": "product_views_30m", "type": "int64", "aggregation": "counter",
             "period": "PT30M", "events": _EVENTS, "criteria": _is("product_view")},
            {"name": "cart_value_30m", "type": "double", "aggregation": "max",
             "period": "PT30M", "events": _EVENTS, "property": cart},
        ],
    }  # fmt: skip
    user = {
        "name": "shop_user", "version": 1, "attribute_key": {"name": "domain_userid"},
        "attributes": [
            {"name": "user_events", "type": "int64", "aggregation": "counter", "events": _EVENTS}
        ],
    }  # fmt: skip
    body = {key: anchors, "attributes": {"attribute_groups": [session, user]}}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(body), encoding="utf-8")
    return path


_SESSION = {"mode": "session", "goal_criteria": _is("transaction"), "training_span": _SPAN,
            "max_negative_ratio": 1000.0}  # fmt: skip


def _build(spec: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["dataset", "build", str(spec), "--from", "warehouse", "--out", str(out)]) == 0
    return dict(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))


def _file_rows(path: Path) -> list[dict[str, Any]]:
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        reader = "read_parquet" if path.suffix == ".parquet" else "read_csv_auto"
        cursor = con.execute(f"SELECT * FROM {reader}('{path}')")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _check(rows: list[dict[str, Any]], csv_path: Path) -> None:
    expected = expected_session_rows(read_events(csv_path), start=_START, end=_END)
    got = [
        (
            row["domain_sessionid"],
            int(row["anchor_ts"].timestamp() * 1000),
            *(_number(row[k]) for k in ("label", *_ATTRS)),
        )
        for row in rows
    ]
    want = [(s, t, *(_number(v) for v in rest)) for s, t, *rest in expected]
    assert len(rows) == len(expected) > 100
    assert sorted(got, key=repr) == sorted(want, key=repr)


_ATTRS = ("product_views_30m", "cart_value_30m", "user_events")


def _number(value: Any) -> float | None:
    return None if value is None or value == "" else float(value)


@pytest.fixture
def csv_path(tmp_path: Path) -> Path:
    return typed_csv(tmp_path)


@pytest.fixture
def duckdb_warehouse(tmp_path: Path, csv_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``SIGNALS_WAREHOUSE_URL``: a DuckDB file with the typed events."""
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        load_duckdb(con, csv_path)
    monkeypatch.setenv("SIGNALS_WAREHOUSE_URL", f"duckdb:///{warehouse}")
    return warehouse


@pytest.mark.usefixtures("duckdb_warehouse")
def test_build_from_duckdb_into_parquet_and_csv(
    tmp_path: Path, csv_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(tmp_path, _SESSION)
    for name in ("train.parquet", "train.csv"):
        result = _build(spec, tmp_path / name, capsys)
        rows = _file_rows(tmp_path / name)
        assert result["rows"] == len(rows)
        assert list(rows[0]) == ["domain_sessionid", "domain_userid", "anchor_ts", "label", *_ATTRS]
        _check(rows, csv_path)


@pytest.mark.usefixtures("duckdb_warehouse")
def test_event_anchors_from_the_cli(
    tmp_path: Path, csv_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    anchors = {"criteria": _is("add_to_cart"), "training_span": _SPAN, "max_anchors_per_session": 2}
    _build(_spec(tmp_path, anchors, key="event_anchors"), tmp_path / "eval.csv", capsys)
    rows = _file_rows(tmp_path / "eval.csv")
    assert "label" not in rows[0]
    with csv_path.open(newline="", encoding="utf-8") as handle:
        carts: dict[str, list[str]] = {}
        for row in csv.DictReader(handle):
            if (
                row["domain_sessionid"]
                and json.loads(row[ACTION] or "{}").get("type") == "add_to_cart"
            ):
                carts.setdefault(row["domain_sessionid"], []).append(row["derived_tstamp"])
    expected = sorted((s, t) for s, times in carts.items() for t in sorted(times)[:2])
    got = sorted(
        (r["domain_sessionid"], r["anchor_ts"].strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]) for r in rows
    )
    assert [(s, t[:23]) for s, t in expected] == got


def test_build_from_postgres_into_csv(
    tmp_path: Path, csv_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("SIGNALS_WAREHOUSE_URL", postgres_url)
    out = tmp_path / "train.csv"
    _build(_spec(tmp_path, _SESSION), out, capsys)
    _check(_file_rows(out), csv_path)
    _build(_spec(tmp_path, _SESSION), tmp_path / "train.parquet", capsys)
    _check(_file_rows(tmp_path / "train.parquet"), csv_path)


@pytest.mark.parametrize("dialect", ["snowflake", "bigquery", "postgres"])
@pytest.mark.usefixtures("duckdb_warehouse")
def test_sql_for_other_warehouses_parses_back(tmp_path: Path, dialect: str) -> None:
    out = tmp_path / "bundle"
    assert (
        main(
            [
                "dataset",
                "sql",
                str(_spec(tmp_path, _SESSION)),
                "--dialect",
                dialect,
                "--out",
                str(out),
            ]
        )
        == 0
    )
    files = sorted(p.name for p in out.iterdir())
    assert files == [
        "signals_anchors.sql", "signals_attributes_domain_sessionid.sql",
        "signals_attributes_domain_userid.sql", "signals_dataset.sql",
    ]  # fmt: skip
    for path in out.iterdir():
        statements = [s for s in sqlglot.parse(path.read_text(), read=dialect) if s is not None]
        assert statements and all(
            isinstance(s, sqlglot.exp.Create | sqlglot.exp.Drop) for s in statements
        )
        if dialect == "bigquery" and path.name == "signals_anchors.sql":
            assert "TO_HEX(MD5(" in path.read_text()  # BigQuery's MD5 is bytes: hex as elsewhere
