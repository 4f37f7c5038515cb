"""The batch engine end to end on the real broker: the ecommerce seed replayed into a worker that
computes the reference group as a stream group, the same events in a DuckDB ``atomic.events``;
the worker computes the batch group on its sync schedule and serves it, ``signals-stream batch
run`` and ``sync run`` do it again on demand, and for every entity the served batch values
equal the live stream's.

Left out of the comparison, as documented (docs/semantics.md): TTL'd attributes (live, a TTL
runs from processing time, so a replayed backlog never expires; the batch decides on event
time) and ``time_since_*`` (read a few seconds apart)."""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from aiokafka import AIOKafkaProducer

from signals_stream.events.parse import parse_tsv
from tests.batch_events import load_duckdb, typed_csv
from tests.dbt_seeds import ECOMMERCE_SEED, seed_tsv
from tests.integration.workers import Worker, stream_app
from tests.unit.batch.ecommerce_group import GROUP_FILE, batch_group

pytestmark = pytest.mark.integration

_LIVE_DIFFERS = {"session_events", "weekly_actions", "week_last_url"}
_APPROXIMATE = {"distinct_products", "active_weeks"}


def _definitions(tmp_path: Path) -> Path:
    body = yaml.safe_load(GROUP_FILE.read_text())
    (batch,) = body["attribute_groups"]
    stream = {**batch, "name": "ecom_stream", "offline": False}
    path = tmp_path / "definitions.yaml"
    path.write_text(yaml.safe_dump({"attribute_groups": [batch, stream]}))
    return path


def _produce(bootstrap: str, topic: str) -> int:
    lines = seed_tsv(ECOMMERCE_SEED)

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=[bootstrap], enable_idempotence=False)
        await producer.start()
        try:
            for line in lines:
                await producer.send(topic, line.encode())
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(produce())
    return sum(1 for line in lines if parse_tsv(line).atomic("domain_userid"))


def _cli(env: dict[str, str], *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "signals_stream.cli", *args],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _sync_status(worker: Worker) -> dict[str, Any]:
    return dict(worker.stats().get("sync", {}).get("ecom_batch:1", {}))


def _read(worker: Worker, group: str, uid: str) -> dict[str, Any]:
    status, body = worker.get(f"/tables/{group}/1/{uid}")
    assert status == 200, body
    return dict(json.loads(body)["attributes"])


def _same(name: str, batch: Any, stream: Any) -> bool:
    if name in _APPROXIMATE:
        return abs(batch - stream) <= max(1, 0.02 * batch)
    if isinstance(stream, str) and isinstance(batch, str) and stream.endswith("Z"):
        return batch.replace("+00:00", "Z").replace(".000000Z", "Z") == stream.replace(
            ".000000Z", "Z"
        ) or _same_instant(batch, stream)
    if isinstance(stream, float) or isinstance(batch, float):
        return batch is not None and stream is not None and math.isclose(batch, stream)
    return bool(batch == stream)


def _same_instant(a: str, b: str) -> bool:
    from datetime import datetime

    try:
        return datetime.fromisoformat(a) == datetime.fromisoformat(b)
    except ValueError:
        return False


@pytest.mark.timeout(600)
def test_batch_values_served_through_the_sync_equal_the_live_streams(
    kafka_broker: Any, tmp_path: Path
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        load_duckdb(con, typed_csv(tmp_path))
    app = stream_app(kafka_broker, "batch")
    env = app.env(
        tmp_path / "state",
        SIGNALS_WAREHOUSE_URL=f"duckdb:///{warehouse}",
        SIGNALS_DEFINITIONS=str(_definitions(tmp_path)),
    )
    worker = Worker(env, tmp_path / "worker.log")
    try:
        worker.wait_healthy(timeout_s=120)
        # On its sync schedule the worker computes the batch group and syncs its table itself.
        deadline = time.monotonic() + 120
        while _sync_status(worker).get("total_rows_sent") != 59:
            assert time.monotonic() < deadline, (_sync_status(worker), worker.log_tail())
            time.sleep(0.5)
        assert _sync_status(worker)["last_error"] is None
        keyed = _produce(kafka_broker.bootstrap, app.input_topic)
        worker.wait_applied(keyed, timeout_s=120)
        # The command line does the same now, without waiting for refresh_rate.
        result = _cli(env, "batch", "run", "ecom_batch")
        assert result["rows"] == 59 and result["table"] == "signals.ecom_batch_1_attributes"
        assert result["mode"].startswith("full (attribute ")
        status = _cli(env, "sync", "run", "ecom_batch")
        assert status["rows_read"] == 59 and status["last_error"] is None, status
        uids = sorted({u for (u,) in _table_ids(warehouse)})
        names = [a.name for a in batch_group().attributes or ()]
        compared = [n for n in names if n not in _LIVE_DIFFERS and not n.startswith("days_")
                    and not n.startswith("hours_")]  # fmt: skip
        deadline = time.monotonic() + 60
        while True:  # the sync's records are applied by the owning worker shortly after
            first = _read(worker, "ecom_batch", uids[0])
            if first["events"] is not None or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        mismatches = []
        for uid in uids:
            batch, stream = _read(worker, "ecom_batch", uid), _read(worker, "ecom_stream", uid)
            mismatches += [
                (uid, n, batch[n], stream[n]) for n in compared if not _same(n, batch[n], stream[n])
            ]
        assert mismatches == []
        assert _read(worker, "ecom_batch", uids[0])["events"] > 0
    finally:
        worker.stop()


def _table_ids(path: Path) -> list[tuple[str]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return [tuple(r) for r in con.execute(
            "SELECT domain_userid FROM signals.ecom_batch_1_attributes"
        ).fetchall()]  # fmt: skip
