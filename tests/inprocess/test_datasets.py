"""Training datasets through the official SDK over HTTP, against a worker's own views, on a
DuckDB warehouse holding the ecommerce events; every row is compared with values worked out
from the CSV in plain Python (``tests/dataset_expected.py``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from aiohttp.test_utils import TestClient, TestServer
from snowplow_signals import (
    Attribute,
    AttributeGroup,
    Criteria,
    Criterion,
    EntityProperty,
    Event,
    EventProperty,
    SignalsSandbox,
    StreamAttributeGroup,
    domain_sessionid,
    domain_userid,
)
from snowplow_signals.models.dataset import WarehouseTable
from snowplow_signals.models.model import AttributeGroupResponse, TrainingSpan

from signals_stream.datasets.run_log import MemoryRunLog
from signals_stream.worker import build_worker
from tests.batch_events import load_duckdb, typed_csv
from tests.dataset_expected import ACTION, md5_order, read_events, session_anchors, values_at
from tests.dataset_expected import Event as Seen
from tests.inprocess.conftest import TOKEN, RecordingProducer, worker_settings

_VENDOR = "com.snowplowanalytics.snowplow.ecommerce"
_ACTION = EventProperty(
    vendor=_VENDOR, name="snowplow_ecommerce_action", major_version=1, path="type"
)
_ACTIONS = [  # every event of the seed is one of these
    Event(vendor=vendor, name="snowplow_ecommerce_action")
    for vendor in (_VENDOR, "ecommerce.tracking")
]
_START = datetime(2022, 1, 1, tzinfo=UTC)
_END = datetime(2023, 1, 1, tzinfo=UTC)


def _last_30_minutes(name: str, kind: str, aggregation: str, **more: Any) -> Attribute:
    period = timedelta(minutes=30)
    body = {"name": name, "type": kind, "aggregation": aggregation, "period": period}
    return Attribute.model_validate({**body, "events": _ACTIONS, **more})


def _groups() -> list[AttributeGroup | AttributeGroupResponse]:
    session = StreamAttributeGroup(
        name="shop_session",
        version=1,
        owner="a@b.c",
        attribute_key=domain_sessionid,
        attributes=[
            _last_30_minutes(
                "product_views_30m",
                "int64",
                "counter",
                criteria=Criteria(all=[Criterion.eq(_ACTION, "product_view")]),
            ),
            _last_30_minutes(
                "cart_value_30m",
                "double",
                "max",
                property=EntityProperty(
                    vendor=_VENDOR, name="cart", major_version=1, path="total_value"
                ),
            ),
        ],
    )
    user = StreamAttributeGroup(
        name="shop_user",
        version=1,
        owner="a@b.c",
        attribute_key=domain_userid,
        attributes=[
            Attribute(name="user_events", type="int64", aggregation="counter", events=_ACTIONS)
        ],
    )
    return [session, user]


class Stack:
    def __init__(self, url: str, warehouse: Path, events: list[Seen]) -> None:
        self.url = url
        self.warehouse = warehouse
        self.events = events
        self.sdk = SignalsSandbox(api_url=url, sandbox_token=TOKEN)

    def http(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        return httpx.request(method, f"{self.url}/api/v1/{path}", headers=headers, **kwargs)

    def rows(self, table: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        with duckdb.connect(str(self.warehouse), read_only=True) as con:
            cursor = con.execute(f"SELECT * FROM {table}")
            return [d[0] for d in cursor.description], cursor.fetchall()


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    settings = worker_settings(tmp_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    warehouse = settings.data_dir / "warehouse.duckdb"
    csv_path = typed_csv(tmp_path)
    with duckdb.connect(str(warehouse)) as con:
        load_duckdb(con, csv_path)
    state = build_worker(settings)
    state.app.producer = RecordingProducer()  # type: ignore[assignment]
    assert state.dataset_runs is not None
    state.dataset_runs.log = MemoryRunLog()  # no broker in this tier (the run log's tests have one)
    server = TestServer(state.app.web.web_app)  # type: ignore[attr-defined]
    await server.start_server()
    try:
        yield Stack(str(server.make_url("")).rstrip("/"), warehouse, read_events(csv_path))
    finally:
        await server.close()


def _wait(stack: Stack, run_id: Any) -> Any:
    deadline = time.monotonic() + 60
    while True:
        status = stack.sdk.get_dataset_run_status(run_id)
        if status.status != "pending" or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def _goal() -> Criteria:
    return Criteria(all=[Criterion.eq(_ACTION, "transaction")])


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _as_dicts(columns: list[str], rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [dict(zip(columns, row, strict=True)) for row in rows]


async def test_session_anchors_through_the_sdk_equal_the_csv(stack: Stack) -> None:
    def build() -> Any:
        bundle = stack.sdk.build_dataset_with_session_anchors(
            attribute_groups=_groups(),
            goal_criteria=_goal(),
            training_span=TrainingSpan(start_time=_START, end_time=_END),
            max_negative_ratio=1000.0,
        )
        run = stack.sdk.submit_dataset_run_with_session_anchors(
            attribute_groups=_groups(),
            goal_criteria=_goal(),
            training_span=TrainingSpan(start_time=_START, end_time=_END),
            max_negative_ratio=1000.0,
        )
        return bundle, run, _wait(stack, run.id)

    bundle, run, status = await asyncio.to_thread(build)
    tables = [bundle.response.anchors.table, *(a.table for a in bundle.response.attributes)]
    assert tables == [
        "signals_anchors",
        "signals_attributes_domain_sessionid",
        "signals_attributes_domain_userid",
    ]
    assert status.status == "success", status
    columns, rows = stack.rows(_dataset_table(run))
    assert columns == [
        "domain_sessionid", "domain_userid", "anchor_ts", "label",
        "product_views_30m", "cart_value_30m", "user_events",
    ]  # fmt: skip
    expected = session_anchors(
        stack.events, goal="transaction", min_events=1, start=_ms(_START), end=_ms(_END)
    )
    assert len(rows) == len(expected) > 100
    assert {label for _, label in expected} == {0, 1}
    got = {(r["domain_sessionid"], _ms(r["anchor_ts"])): r for r in _as_dicts(columns, rows)}
    for event, label in expected:
        row = got[(event.session, event.t)]
        assert row["label"] == label
        assert row["domain_userid"] == event.user
        want = values_at(stack.events, event.session, event.user, event.t)
        assert {k: row[k] for k in want} == want, (event, row)


def _dataset_table(run: Any) -> str:
    dataset = run.dataset
    return f'"{dataset.schema_}"."{dataset.table}"'


async def test_sampling_keeps_the_first_sessions_by_md5_of_seed_and_id(stack: Stack) -> None:
    def build() -> Any:
        run = stack.sdk.submit_dataset_run_with_session_anchors(
            attribute_groups=_groups()[:1],
            goal_criteria=_goal(),
            training_span=TrainingSpan(start_time=_START, end_time=_END),
            max_negative_ratio=0.5,
            max_anchors_per_session=3,
        )
        return run, _wait(stack, run.id)

    run, status = await asyncio.to_thread(build)
    assert status.status == "success", status
    columns, rows = stack.rows(_dataset_table(run))
    got = _as_dicts(columns, rows)
    anchors = session_anchors(
        stack.events, goal="transaction", min_events=1, start=_ms(_START), end=_ms(_END)
    )
    capped: list[tuple[Seen, int]] = []
    for session in {e.session for e, _ in anchors}:
        mine = sorted(
            (a for a in anchors if a[0].session == session),
            key=lambda a: (md5_order(0, a[0].event_id), a[0].event_id),
        )
        capped += mine[:3]
    positives = [a for a in capped if a[1] == 1]
    negatives = sorted(
        (a for a in capped if a[1] == 0),
        key=lambda a: (md5_order(0, a[0].session), a[0].t, a[0].event_id),
    )
    keep = positives + negatives[: int(0.5 * len(positives))]
    assert sorted((r["domain_sessionid"], _ms(r["anchor_ts"])) for r in got) == sorted(
        (e.session, e.t) for e, _ in keep
    )
    assert sum(r["label"] == 0 for r in got) == int(0.5 * len(positives)) > 0


def _custom_anchors(stack: Stack) -> list[tuple[str, str, int, bool]]:
    """One anchor per session in the middle of its events (session, user, ms, label)."""
    out = []
    sessions: dict[str, list[Seen]] = {}
    for e in stack.events:
        if e.session:
            sessions.setdefault(e.session, []).append(e)
    for n, (session, evs) in enumerate(sorted(sessions.items())):
        times = sorted(e.t for e in evs)
        out.append((session, evs[0].user, times[len(times) // 2] + 1, n % 2 == 0))
    return out


def _write_anchors(stack: Stack, anchors: list[tuple[str, str, int, bool]]) -> None:
    with duckdb.connect(str(stack.warehouse)) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS mine")
        con.execute(
            "CREATE TABLE mine.anchors (domain_sessionid TEXT, domain_userid TEXT, "
            "anchor_ts TIMESTAMPTZ, label BOOLEAN)"
        )
        con.executemany(
            "INSERT INTO mine.anchors VALUES (?, ?, make_timestamptz(? * 1000), ?)",
            [list(a) for a in anchors],
        )


def _custom_run(stack: Stack, groups: list[AttributeGroup | AttributeGroupResponse]) -> Any:
    source = WarehouseTable(database="warehouse", schema="mine", table="anchors")
    run = stack.sdk.submit_dataset_run_with_custom_anchors(
        attribute_groups=groups, anchors_table=source
    )
    return run, _wait(stack, run.id)


async def test_custom_anchors_through_the_sdk_equal_the_csv(stack: Stack) -> None:
    anchors = _custom_anchors(stack)
    _write_anchors(stack, anchors)
    run, status = await asyncio.to_thread(_custom_run, stack, _groups())
    assert status.status == "success", status
    columns, rows = stack.rows(_dataset_table(run))
    got = {r["domain_sessionid"]: r for r in _as_dicts(columns, rows)}
    assert len(got) == len(anchors) > 50
    for session, user, at, label in anchors:
        row = got[session]
        assert _ms(row["anchor_ts"]) == at and row["label"] == label
        want = values_at(stack.events, session, user, at)
        assert {k: row[k] for k in want} == want, (session, row)

    def preview() -> Any:
        return stack.sdk.get_dataset_run_preview(run.id, limit=5)

    shown = await asyncio.to_thread(preview)
    assert len(shown.data) == 5 and shown.row_count == len(anchors)
    assert shown.columns == columns
    too_many = await asyncio.to_thread(
        stack.http, "GET", f"datasets/runs/{run.id}/preview", params={"limit": 10_001}
    )
    assert too_many.status_code == 422 and "limit" in too_many.json()["detail"]
    finished = await asyncio.to_thread(stack.http, "POST", f"datasets/runs/{run.id}/cancel")
    assert finished.status_code == 409


async def test_no_leakage_poisoned_future_events_change_no_row(stack: Stack) -> None:
    anchors = _custom_anchors(stack)
    _write_anchors(stack, anchors)
    groups = _groups()[:1]  # session-keyed: every event after a session's anchor is poisoned
    run, status = await asyncio.to_thread(_custom_run, stack, groups)
    assert status.status == "success"
    before = stack.rows(_dataset_table(run))
    with duckdb.connect(str(stack.warehouse)) as con:
        con.execute("SET TimeZone = 'UTC'")
        poisoned = con.execute(
            f"""UPDATE atomic.events AS e SET
                {ACTION} = '{{"type": "product_view"}}',
                contexts_com_snowplowanalytics_snowplow_ecommerce_cart_1_0_0 =
                    '[{{"total_value": 1e15, "currency": "EUR"}}]'
            FROM mine.anchors AS a
            WHERE e.domain_sessionid = a.domain_sessionid
              AND (e.collector_tstamp >= a.anchor_ts
                   OR COALESCE(e.derived_tstamp, e.collector_tstamp) >= a.anchor_ts)"""
        ).fetchall()
        assert poisoned[0][0] > 100
    rerun, status = await asyncio.to_thread(_custom_run, stack, groups)
    assert status.status == "success"
    assert stack.rows(_dataset_table(rerun)) == before


async def test_bad_requests_name_the_field_and_unknown_runs_are_404(stack: Stack) -> None:
    bad = await asyncio.to_thread(
        stack.http, "POST", "datasets/runs", json={"anchors": {"mode": "session"}}
    )
    assert bad.status_code == 422 and "anchors.session.goal_criteria" in bad.json()["detail"]
    missing = {
        "anchors": {"mode": "user_supplied", "source": {"schema": "mine", "table": "nothing"}},
        "attributes": {
            "attribute_groups": [
                g.model_dump(mode="json", by_alias=True, exclude_none=True) for g in _groups()
            ]
        },
    }
    refused = await asyncio.to_thread(stack.http, "POST", "datasets/runs", json=missing)
    assert refused.status_code == 422 and "anchors.source" in refused.json()["detail"]
    unknown = await asyncio.to_thread(
        stack.http, "GET", "datasets/runs/5b0f6d4e-7e0e-4c43-9a55-1f1f1f1f1f1f"
    )
    assert unknown.status_code == 404
    not_uuid = await asyncio.to_thread(stack.http, "GET", "datasets/runs/nope")
    assert not_uuid.status_code == 422 and "run_id" in not_uuid.json()["detail"]


async def test_agentic_contexts_are_a_body_field_built_from_the_log_only(stack: Stack) -> None:
    """``agentic_contexts`` (ours, the SDK never sends it) is validated naming the field; the
    warehouse endpoints have no SQL form for it and say so (422), ``--from log`` builds it."""
    log = {"name": "ctx", "attribute_key": {"name": "domain_sessionid"}, "max_events": 5,
           "max_age_seconds": 60, "events": [{"event": {"name": "snowplow_ecommerce_action"},
                                              "properties": [{"type": "atomic",
                                                              "name": "event_name"}]}]}  # fmt: skip
    body = {
        "anchors": {"mode": "user_supplied", "source": {"schema": "mine", "table": "anchors"}},
        "attributes": {
            "attribute_groups": [
                g.model_dump(mode="json", by_alias=True, exclude_none=True) for g in _groups()
            ]
        },
    }
    for path in ("datasets/sql", "datasets/runs"):
        bad = {**body, "agentic_contexts": [{**log, "max_events": 0}]}
        answer = await asyncio.to_thread(stack.http, "POST", path, json=bad)
        assert answer.status_code == 422
        assert "agentic_contexts.0.max_events" in answer.json()["detail"]
        good = {**body, "agentic_contexts": [log]}
        answer = await asyncio.to_thread(stack.http, "POST", path, json=good)
        assert answer.status_code == 422, answer.text
        assert answer.json()["detail"].startswith("agentic_contexts: ")
        assert "--from log" in answer.json()["detail"]


async def test_a_queued_run_is_cancelled(stack: Stack) -> None:
    def submit_two() -> tuple[Any, Any]:
        kwargs: dict[str, Any] = {
            "attribute_groups": _groups(),
            "goal_criteria": _goal(),
            "training_span": TrainingSpan(start_time=_START, end_time=_END),
        }
        first = stack.sdk.submit_dataset_run_with_session_anchors(**kwargs)
        second = stack.sdk.submit_dataset_run_with_session_anchors(**kwargs)
        stack.sdk.cancel_dataset_run(second.id)
        return _wait(stack, first.id), _wait(stack, second.id)

    first, second = await asyncio.to_thread(submit_two)
    assert first.status == "success"
    assert second.status == "failed"
    answer = await asyncio.to_thread(stack.http, "GET", f"datasets/runs/{second.id}")
    assert answer.json()["error"] == "cancelled"


async def test_without_a_warehouse_a_valid_request_is_a_409_not_a_500(client: TestClient) -> None:
    body = {
        "anchors": {"mode": "user_supplied", "source": {"table": "anchors"}},
        "attributes": {
            "attribute_groups": [
                g.model_dump(mode="json", by_alias=True, exclude_none=True) for g in _groups()
            ]
        },
    }
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for path in ("/api/v1/datasets/sql", "/api/v1/datasets/runs"):
        answer = await client.post(path, json=body, headers=headers)
        assert answer.status == 409, path
        assert "does not exist" in (await answer.json())["detail"]
