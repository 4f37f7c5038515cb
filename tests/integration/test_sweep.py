"""Expired entity rows are deleted from the stream (tombstones), idle partitions included."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest

from signals_stream.devtools.produce import produce_records
from tests.datafiles import DATA_DIR
from tests.integration.workers import running_worker, stream_app

pytestmark = pytest.mark.integration

DEFINITIONS = """
attribute_groups:
  - name: short_lived
    version: 1
    attribute_key: {name: domain_userid}
    ttl: PT3S
    attributes:
      - {name: events, type: int32, events: [], aggregation: counter}
"""


def test_rows_past_their_ttl_are_swept(kafka_broker, tmp_path: Path) -> None:
    definitions = tmp_path / "definitions.yaml"
    definitions.write_text(DEFINITIONS)
    app = stream_app(kafka_broker, "sweep")
    input_topic = app.input_topic
    lines = [
        line
        for line in (DATA_DIR / "kafka-live-viewer-profiles" / "micro.1.tsv")
        .read_bytes()
        .split(b"\n")
        if line
    ]
    user = lines[0].split(b"\t")[15].decode()
    env = app.env(
        tmp_path / "state", SIGNALS_DEFINITIONS=str(definitions), SIGNALS_SWEEP_INTERVAL_S="1"
    )
    with running_worker(env, tmp_path / "worker.log") as worker:
        records = ((None, line) for line in lines)
        asyncio.run(produce_records([kafka_broker.bootstrap], input_topic, records))
        deadline = time.monotonic() + 30
        status, raw = 0, b""
        while time.monotonic() < deadline:
            status, raw = worker.get(f"/entities/domain_userid/{user}")
            if status == 200 and orjson.loads(raw)["events"] == len(lines):
                break
            time.sleep(0.2)
        assert status == 200 and orjson.loads(raw)["events"] == len(lines), worker.log_tail()
        seen_at = time.monotonic()
        while time.monotonic() < seen_at + 30:
            status, raw = worker.get(f"/entities/domain_userid/{user}")
            if status == 404:
                break
            time.sleep(0.5)
        assert status == 404, (raw, worker.log_tail())
        assert time.monotonic() - seen_at >= 2.0  # not before its TTL (3 s from the last update)
        stats = orjson.loads(worker.get("/stats")[1])
        assert stats["rows_swept"] >= 1
        status, raw = worker.get(f"/tables/short_lived/{user}")
        assert status == 200 and orjson.loads(raw)["attributes"] == {"events": 0}
