"""``dataset build --from log`` with PostgreSQL at both ends, on the real broker and a
test-started PostgreSQL: the user-supplied anchors are the request's ``anchors.source`` table
there, and the dataset is written to a table there (``--table``, no ``--out``).

The input topic holds the ecommerce seed as enriched TSV; every row's values are worked out
from the seed's CSV in plain Python (``tests/dataset_expected.py``).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from signals_stream.devtools.produce import produce_records
from tests.batch_events import typed_csv
from tests.dataset_expected import read_events, values_at
from tests.dbt_seeds import ECOMMERCE_SEED, seed_tsv
from tests.inprocess.test_datasets import _groups
from tests.integration.workers import stream_app
from tests.postgres_server import postgres_server

pytestmark = pytest.mark.integration


def _anchors(csv_path: Path) -> list[tuple[str, str, int, bool]]:
    """One anchor per session in the middle of its events (session, user, ms, label)."""
    sessions: dict[str, list[Any]] = {}
    for event in read_events(csv_path):
        if event.session:
            sessions.setdefault(event.session, []).append(event)
    out = []
    for n, (session, events) in enumerate(sorted(sessions.items())):
        times = sorted(e.t for e in events)
        out.append((session, events[0].user, times[len(times) // 2] + 1, n % 2 == 0))
    return out


@pytest.mark.timeout(300)
def test_log_build_reads_anchors_from_and_writes_the_dataset_to_postgres(
    kafka_broker: Any, tmp_path: Path
) -> None:
    app = stream_app(kafka_broker, "dspg")
    lines = [(None, line.encode()) for line in seed_tsv(ECOMMERCE_SEED)]
    asyncio.run(produce_records([kafka_broker.bootstrap], app.input_topic, lines))
    csv_path = typed_csv(tmp_path)
    anchors = _anchors(csv_path)
    spec = tmp_path / "spec.yaml"
    body = {
        "anchors": {"mode": "user_supplied", "source": {"schema": "mine", "table": "anchors"}},
        "attributes": {
            "attribute_groups": [
                g.model_dump(mode="json", by_alias=True, exclude_none=True) for g in _groups()
            ]
        },
    }
    spec.write_text(yaml.safe_dump(body))
    with postgres_server() as url:
        with psycopg.connect(url) as conn:
            conn.execute("CREATE SCHEMA mine")
            conn.execute(
                "CREATE TABLE mine.anchors (domain_sessionid TEXT, domain_userid TEXT, "
                "anchor_ts TIMESTAMPTZ, label BOOLEAN)"
            )
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO mine.anchors VALUES (%s, %s, to_timestamp(%s / 1000.0), %s)",
                    anchors,
                )
        env = {**os.environ, **app.env(tmp_path / "build"), "SIGNALS_WAREHOUSE_URL": url}
        done = subprocess.run(
            [sys.executable, "-m", "signals_stream.cli", "dataset", "build", str(spec),
             "--from", "log", "--table", "out.dataset", "--no-progress"],
            env=env, capture_output=True, text=True, timeout=240, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert f"{len(anchors):,} rows" in done.stderr and "out.dataset on" in done.stderr
        with psycopg.connect(url) as conn:
            cursor = conn.execute("SELECT * FROM out.dataset")
            columns = [d.name for d in cursor.description or []]
            rows = cursor.fetchall()
            kinds = dict(
                conn.execute(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = 'out' AND table_name = 'dataset'"
                ).fetchall()
            )
    assert columns == [
        "domain_sessionid", "domain_userid", "anchor_ts", "label",
        "product_views_30m", "cart_value_30m", "user_events",
    ]  # fmt: skip
    assert kinds["anchor_ts"] == "timestamp with time zone" and kinds["label"] == "boolean"
    got = {r[0]: dict(zip(columns, r, strict=True)) for r in rows}
    assert len(rows) == len(got) == len(anchors) > 50
    events = read_events(csv_path)
    for session, user, at, label in anchors:
        row = got[session]
        assert int(row["anchor_ts"].timestamp() * 1000) == at and row["label"] == label
        want = values_at(events, session, user, at)
        assert {k: row[k] for k in want} == want, (session, row)
    assert any(r["product_views_30m"] for r in got.values())  # not all defaults
