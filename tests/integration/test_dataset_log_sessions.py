"""Session anchors from the log: ``dataset build --from log`` over the ecommerce events on the
real broker gives the same rows as ``--from warehouse`` over the same events in DuckDB
(anchors, labels, keys and every attribute), with and without the cap and the sampling; and
the unsampled rows equal the ones worked out from the CSV in plain Python
(``tests/dataset_expected.py``)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from signals_stream.cli import main
from signals_stream.devtools.broker import LocalBroker
from signals_stream.devtools.produce import produce_records
from tests.dataset_expected import expected_session_rows, read_events
from tests.dbt_seeds import ECOMMERCE_SEED, seed_tsv
from tests.integration.workers import stream_app
from tests.unit.datasets.test_dataset_cli import (
    _ATTRS,
    _END,
    _SPAN,
    _START,
    _file_rows,
    _is,
    _spec,
    csv_path,  # noqa: F401  (fixtures)
    duckdb_warehouse,  # noqa: F401
)

pytestmark = pytest.mark.integration

_COLUMNS = ["domain_sessionid", "domain_userid", "anchor_ts", "label", *_ATTRS]


def _rows(path: Path) -> list[tuple[Any, ...]]:
    out = []
    for row in _file_rows(path):
        assert list(row) == _COLUMNS
        values = [None if v == "" else v for v in row.values()]
        values[2] = int(row["anchor_ts"].timestamp() * 1000)
        values[3:] = [None if v is None else float(v) for v in values[3:]]
        out.append(tuple(values))
    return sorted(out, key=repr)


def _build(spec: Path, source: str, out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    extra = ["--no-progress"] if source == "log" else []
    assert main(["dataset", "build", str(spec), "--from", source, "--out", str(out), *extra]) == 0
    capsys.readouterr()


@pytest.mark.usefixtures("duckdb_warehouse")
def test_session_anchors_from_the_log_equal_the_warehouse_and_the_csv(
    kafka_broker: LocalBroker, tmp_path: Path, csv_path: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    app = stream_app(kafka_broker, "dssess")
    lines = [(None, line.encode()) for line in seed_tsv(ECOMMERCE_SEED)]
    asyncio.run(produce_records([kafka_broker.bootstrap], app.input_topic, lines))
    for name, value in app.env(tmp_path / "state").items():
        monkeypatch.setenv(name, value)
    base = {"mode": "session", "goal_criteria": _is("transaction"), "training_span": _SPAN}
    cases = {
        "every anchor": {**base, "max_negative_ratio": 1000.0},
        "capped and sampled": {**base, "min_events": 2, "max_anchors_per_session": 3,
                               "max_negative_ratio": 1.0},
    }  # fmt: skip
    built = {}
    for name, anchors in cases.items():
        spec = _spec(tmp_path, anchors)
        spec.write_text(spec.read_text() + "seed: 7\n")
        _build(spec, "log", tmp_path / "log.parquet", capsys)
        _build(spec, "warehouse", tmp_path / "sql.csv", capsys)
        from_log, from_sql = _rows(tmp_path / "log.parquet"), _rows(tmp_path / "sql.csv")
        assert from_log == from_sql, name
        built[name] = from_log
    expected = expected_session_rows(read_events(csv_path), start=_START, end=_END)
    plain = sorted(((s, t, *(None if v is None else float(v) for v in rest))
                    for s, t, *rest in expected), key=repr)  # fmt: skip
    every = [(r[0], r[2], *r[3:]) for r in built["every anchor"]]
    assert every == plain and len(plain) > 100
    assert 0 < len(built["capped and sampled"]) < len(plain)
    assert json.dumps(sorted({r[3] for r in built["capped and sampled"]})) == "[0.0, 1.0]"
