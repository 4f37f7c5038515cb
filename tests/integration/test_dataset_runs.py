"""Dataset runs that survive and are answered anywhere, on the real broker with a
test-started PostgreSQL warehouse holding the ecommerce events:

- a run submitted on worker A is answered by worker B (status, preview of its table);
- a cancel sent to B stops the run A is running;
- A killed (SIGKILL) mid-run: B answers ``pending`` while A was alive (heartbeats), then
  ``failed`` naming the stopped process;
- a restarted worker still answers every run;
- ``signals-stream api`` serves ``datasets/*`` through the official SDK, with the same 422s.

Runs are held "mid-run" by a lock the test takes on the run's first output table (its
``DROP TABLE`` waits), never by a setting. Expected rows come from the CSV
(``tests/dataset_expected.py``), not from the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import psycopg
import pytest
from snowplow_signals import SignalsSandbox
from snowplow_signals.models.model import TrainingSpan

from signals_stream.kafka.topics import TopicSpec, ensure_topics
from tests.batch_events import column_types, load_duckdb, load_postgres, typed_csv
from tests.dataset_expected import read_events, session_anchors, values_at
from tests.inprocess.test_datasets import _END, _START, _goal, _groups, _ms
from tests.integration.workers import API_TOKEN, StreamApp, Worker, stream_app
from tests.postgres_server import postgres_server
from tests.redis_server import SHARED_REDIS_URL

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Setup:
    app: StreamApp  # a fresh app id on the session's broker
    url: str  # a PostgreSQL warehouse whose atomic.events is the seed
    csv_path: Path  # the seed


@pytest.fixture
def setup(kafka_broker: Any, tmp_path: Path) -> Iterator[Setup]:
    csv_path = typed_csv(tmp_path)
    con = duckdb.connect()
    load_duckdb(con, csv_path)
    with postgres_server() as url:
        load_postgres(url, csv_path, column_types(con))
        yield Setup(stream_app(kafka_broker, "dsruns"), url, csv_path)


def _submit(sdk: SignalsSandbox) -> Any:
    return sdk.submit_dataset_run_with_session_anchors(
        attribute_groups=_groups(),
        goal_criteria=_goal(),
        training_span=TrainingSpan(start_time=_START, end_time=_END),
        max_negative_ratio=1000.0,
    )


def _status(worker: Worker, run_id: Any) -> dict[str, Any]:
    code, body = worker.get(f"/api/v1/datasets/runs/{run_id}", timeout=30)
    assert code == 200, body
    return dict(orjson.loads(body))


def _until(check: Callable[[], Any], want: Callable[[Any], bool], timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        got = check()
        if want(got) or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


@contextlib.contextmanager
def _held(url: str, table: str) -> Iterator[None]:
    """``table`` locked exclusively: a run's ``DROP TABLE`` of it waits."""
    with psycopg.connect(url) as conn:
        conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            conn.rollback()


def _check_rows(preview: Any, csv_path: Path) -> None:
    """The preview (every row) against the anchors and values worked out from the CSV."""
    events = read_events(csv_path)
    expected = session_anchors(
        events, goal="transaction", min_events=1, start=_ms(_START), end=_ms(_END)
    )
    assert preview.row_count == len(preview.data) == len(expected) > 100
    rows = [dict(zip(preview.columns, row, strict=True)) for row in preview.data]
    got = {(r["domain_sessionid"], _ms(datetime.fromisoformat(r["anchor_ts"]))): r for r in rows}
    for event, label in expected[:200]:
        row = got[(event.session, event.t)]
        assert row["label"] == label
        want = values_at(events, event.session, event.user, event.t)
        assert {k: row[k] for k in want} == want, (event, row)


@pytest.mark.timeout(400)
def test_runs_are_answered_by_every_worker_cancelled_across_and_survive_a_kill(
    setup: Setup, tmp_path: Path
) -> None:
    app, url, csv_path = setup.app, setup.url, setup.csv_path
    env_a = app.env(tmp_path / "a", SIGNALS_WAREHOUSE_URL=url)
    a = Worker(env_a, tmp_path / "a.log")
    b = Worker(app.env(tmp_path / "b", SIGNALS_WAREHOUSE_URL=url), tmp_path / "b.log")
    c: Worker | None = None
    try:
        a.wait_healthy(timeout_s=120)
        b.wait_healthy(timeout_s=120)
        on_a = SignalsSandbox(api_url=a.url, sandbox_token=API_TOKEN)
        on_b = SignalsSandbox(api_url=b.url, sandbox_token=API_TOKEN)

        # Submitted on A, answered by B: status, then a preview of the run's table.
        first = _submit(on_a)
        done = _until(lambda: _status(b, first.id), lambda s: s["status"] != "pending", 120)
        assert done["status"] == "success", done
        _check_rows(on_b.get_dataset_run_preview(first.id, limit=10_000), csv_path)
        code, body = b.get(f"/api/v1/datasets/runs/{first.id}/preview?limit=10001")
        assert code == 422 and b"limit" in body
        assert b.request("POST", f"/api/v1/datasets/runs/{first.id}/cancel")[0] == 409

        with _held(url, "signals.signals_anchors"):
            # A cancel sent to B stops the run A is running.
            second = _submit(on_a)
            assert _status(b, second.id)["status"] == "pending"
            code, body = b.request("POST", f"/api/v1/datasets/runs/{second.id}/cancel")
            assert code == 200, body
            ended = _until(lambda: _status(b, second.id), lambda s: s["status"] != "pending", 30)
            assert (ended["status"], ended.get("error")) == ("failed", "cancelled"), ended

            # A run pending on A: pending on B while A lives, failed once A is killed.
            third = _submit(on_a)
            time.sleep(12)  # longer than a record's staleness: only heartbeats keep it pending
            assert _status(b, third.id)["status"] == "pending"
            pid = a.process.pid
            a.kill()
            lost = _until(lambda: _status(b, third.id), lambda s: s["status"] != "pending", 30)
            assert lost["status"] == "failed", lost
            assert "stopped" in lost["error"] and f":{pid} " in lost["error"], lost

        # A restarted worker answers every run, and previews the finished one.
        c = Worker({**env_a}, tmp_path / "c.log")
        c.wait_healthy(timeout_s=120)
        assert _status(c, first.id)["status"] == "success"
        assert _status(c, second.id)["error"] == "cancelled"
        assert _status(c, third.id)["status"] == "failed"
        on_c = SignalsSandbox(api_url=c.url, sandbox_token=API_TOKEN)
        shown = on_c.get_dataset_run_preview(first.id, limit=7)
        assert len(shown.data) == 7 and shown.row_count == done["row_count"]
    finally:
        for worker in (a, b, c):
            if worker is not None:
                worker.stop()


@pytest.mark.timeout(300)
def test_signals_stream_api_serves_datasets_through_the_sdk(setup: Setup, tmp_path: Path) -> None:
    app, url, csv_path = setup.app, setup.url, setup.csv_path
    registry = TopicSpec(f"{app.app_id}-registry-changelog", 1, compacted=True)
    asyncio.run(
        ensure_topics([app.broker_url.removeprefix("kafka://")], [registry])
    )  # no worker: none made it
    env = app.env(tmp_path / "api", SIGNALS_WAREHOUSE_URL=url, SIGNALS_REDIS_URL=SHARED_REDIS_URL)
    api = Worker(env, tmp_path / "api.log", command="api")
    try:
        api.wait_healthy(timeout_s=60)
        sdk = SignalsSandbox(api_url=api.url, sandbox_token=API_TOKEN)
        bundle = sdk.build_dataset_with_session_anchors(
            attribute_groups=_groups(),
            goal_criteria=_goal(),
            training_span=TrainingSpan(start_time=_START, end_time=_END),
        )
        assert bundle.response.dataset.table == "signals_dataset"
        assert "DROP TABLE IF EXISTS" in (bundle.response.anchors.sql or "")  # PostgreSQL's
        run = _submit(sdk)
        status = _until(
            lambda: sdk.get_dataset_run_status(run.id), lambda s: s.status != "pending", 120
        )
        assert status.status == "success"
        everything = sdk.get_dataset_run_preview(run.id, limit=10_000)
        _check_rows(everything, csv_path)
        assert len(sdk.get_dataset_run_preview(run.id).data) == 100  # the default limit
        code, body = api.request("POST", "/api/v1/datasets/runs", {"anchors": {"mode": "session"}})
        assert code == 422 and b"anchors.session.goal_criteria" in body, body
        code, body = api.get(f"/api/v1/datasets/runs/{run.id}/preview?limit=0")
        assert code == 422 and b"limit" in body
        assert api.get("/api/v1/datasets/runs/nope")[0] == 422
        assert api.get("/api/v1/datasets/runs/5b0f6d4e-7e0e-4c43-9a55-1f1f1f1f1f1f")[0] == 404
        assert api.request("POST", f"/api/v1/datasets/runs/{run.id}/cancel")[0] == 409
        with psycopg.connect(url) as conn:
            (count,) = conn.execute("SELECT COUNT(*) FROM signals.signals_dataset").fetchone() or (
                0,
            )
        assert count == everything.row_count
    finally:
        api.stop()
