"""A warehouse group's sync status as the SDK's ``BatchSyncStatusResponse`` (checked by the
SDK's own model) and in ``/metrics``; the values are worked out by hand from the status."""

from __future__ import annotations

import datetime as dt

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from snowplow_signals.models.model import BatchSyncStatusResponse

from signals_stream.definitions import AttributeGroup
from signals_stream.ops.metrics import StreamCollector, TopicNames, new_registry
from signals_stream.ops.stats import IngestStats
from signals_stream.sync.status import SyncStatus, status_body
from tests.unit.registry.test_batch_source import EXTERNAL

BACKFILL = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)  # EXTERNAL's backfill_since_tstamp
NOW = BACKFILL + dt.timedelta(days=10, hours=12)  # 11 days of window, the last one partial


def ms(t: dt.datetime) -> int:
    return int(t.timestamp() * 1000)


GROUP = AttributeGroup.parse(EXTERNAL)


def test_a_group_that_never_ran_is_running_with_nothing_synced() -> None:
    body = status_body(GROUP, None, ms(NOW))
    model = BatchSyncStatusResponse.model_validate(body)
    assert model.status == "running" and model.records_synced is None and model.errors == []
    assert model.source_table == "DB.SCH.CRM"
    assert model.sync_progress is not None
    assert (model.sync_progress.days_synced, model.sync_progress.days_total) == (0, 11)
    assert body["next_run_at"] == "2026-06-11T12:00:00Z" and body["runs"] == 0


def test_a_completed_run() -> None:
    started = NOW - dt.timedelta(minutes=2)
    status = SyncStatus(
        "crm:1", watermark_ms=ms(NOW - dt.timedelta(hours=3)), watermark_id="c9",
        last_started_ms=ms(started), last_finished_ms=ms(started) + 5_000,
        last_succeeded_ms=ms(started) + 5_000, next_run_ms=ms(started) + 3_600_000,
        rows_read=4, rows_sent=4, total_rows_sent=30, runs=3,
    )  # fmt: skip
    body = status_body(GROUP, status, ms(NOW))
    model = BatchSyncStatusResponse.model_validate(body)
    assert model.status == "completed" and model.records_synced == 30
    assert model.last_synced_at == started + dt.timedelta(seconds=5)
    assert model.data_fresh_through == NOW - dt.timedelta(hours=3)
    assert model.sync_started_at is None  # nothing running
    assert model.sync_progress is not None and model.sync_progress.days_synced == 11
    assert body["watermark"] == {"timestamp": "2026-06-11T09:00:00Z", "id": "c9"}
    assert body["next_run_at"] == "2026-06-11T12:58:00Z"
    assert (body["rows_read"], body["rows_sent"], body["last_error"]) == (4, 4, None)


def test_a_failed_run_keeps_what_was_synced_before() -> None:
    status = SyncStatus(
        "crm:1", watermark_ms=ms(BACKFILL + dt.timedelta(days=4, hours=1)), watermark_id="c3",
        last_started_ms=ms(NOW), last_finished_ms=ms(NOW) + 100, last_succeeded_ms=ms(BACKFILL),
        total_rows_sent=12, runs=2, failed_runs=1,
        last_error="table SCH.CRM has no column LTV",
    )  # fmt: skip
    model = BatchSyncStatusResponse.model_validate(status_body(GROUP, status, ms(NOW)))
    assert model.status == "failed" and model.records_synced == 12
    assert model.sync_progress is not None
    assert (model.sync_progress.days_synced, model.sync_progress.days_failed) == (4, 7)
    [error] = model.errors
    assert error.message == "table SCH.CRM has no column LTV"
    assert error.interval_start == BACKFILL + dt.timedelta(days=4, hours=1)
    assert error.interval_end == NOW


def test_a_running_sync_shows_its_start() -> None:
    status = SyncStatus("crm:1", last_started_ms=ms(NOW), running=True, runs=1)
    model = BatchSyncStatusResponse.model_validate(status_body(GROUP, status, ms(NOW)))
    assert model.status == "running" and model.sync_started_at == NOW


def test_statuses_older_writers_wrote_still_read() -> None:
    old = {"group": "crm:1", "watermark_ms": 5, "watermark_id": "a", "rows_sent": 2, "gone": 1}
    status = SyncStatus.from_json(old)
    assert (status.watermark_ms, status.rows_sent, status.runs) == (5, 2, 0)


def test_sync_metrics_per_group() -> None:
    statuses = {
        "crm:1": SyncStatus(
            "crm:1", watermark_ms=7_000, watermark_id="x", last_started_ms=10_000,
            last_finished_ms=12_500, next_run_ms=70_000, rows_read=3, rows_sent=3,
            total_rows_sent=9, runs=4, failed_runs=1, last_error=None,
        ),
        "ml:2": SyncStatus("ml:2", last_started_ms=20_000, runs=1, running=True),
    }  # fmt: skip
    collector = StreamCollector(
        IngestStats(), TopicNames("in", "bad", "ee", "out"), latencies={},
        open_streams=lambda: 0, rows_swept=lambda: 0, lag=dict, sync=lambda: statuses,
    )  # fmt: skip
    text = generate_latest(new_registry(collector)).decode()
    samples = {
        (s.name, s.labels.get("group")): s.value
        for family in text_string_to_metric_families(text)
        if family.name.startswith("signals_sync")
        for s in family.samples
    }
    assert samples[("signals_sync_last_run_started_timestamp_seconds", "crm:1")] == 10.0
    assert samples[("signals_sync_last_run_finished_timestamp_seconds", "crm:1")] == 12.5
    assert samples[("signals_sync_next_run_timestamp_seconds", "crm:1")] == 70.0
    assert samples[("signals_sync_watermark_timestamp_seconds", "crm:1")] == 7.0
    assert samples[("signals_sync_rows_sent_total", "crm:1")] == 9
    assert samples[("signals_sync_runs_total", "crm:1")] == 4
    assert samples[("signals_sync_failed_runs_total", "crm:1")] == 1
    assert samples[("signals_sync_last_run_rows_read", "crm:1")] == 3
    assert samples[("signals_sync_running", "ml:2")] == 1
    assert samples[("signals_sync_running", "crm:1")] == 0
    # A group that never finished a run has no finish time, rather than a zero.
    assert ("signals_sync_last_run_finished_timestamp_seconds", "ml:2") not in samples
