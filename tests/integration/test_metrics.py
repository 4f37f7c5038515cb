"""``GET /metrics`` on a real worker: the counts match what was sent, good and bad."""

from __future__ import annotations

import asyncio
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from signals_stream.devtools.produce import produce_records
from tests.datafiles import DATA_DIR
from tests.integration.workers import Worker, running_worker, stream_app

pytestmark = pytest.mark.integration

MICRO = DATA_DIR / "kafka-live-viewer-profiles" / "micro.1.tsv"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _scrape(worker: Worker) -> tuple[str, Samples]:
    """Content type and every sample, scraped without a token (the endpoint is open)."""
    with urllib.request.urlopen(worker.url + "/metrics", timeout=5) as response:
        content_type = response.headers["Content-Type"]
        text = response.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return content_type, samples


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_the_good_and_bad_events_sent_and_their_latency(
    kafka_broker, tmp_path: Path
) -> None:
    app = stream_app(kafka_broker, "metrics")
    entity_topic = f"{app.app_id}-entity-events"
    micro = [line for line in MICRO.read_bytes().split(b"\n") if line]
    truncated = [b"\t".join(line.split(b"\t")[:100]) for line in micro[:2]]
    not_utf8 = micro[0].replace(b"page_view", b"page_\xffview", 1)
    bad_inputs = [*truncated, not_utf8, b"", b"{not json"]
    expected_reasons = {"FieldNumberMismatch": 2, "NotUtf8": 1, "NotTSV": 1, "InvalidJson": 1}
    good = len(micro)

    with running_worker(app.env(tmp_path / "state"), tmp_path / "worker.log") as worker:
        asyncio.run(
            produce_records(
                [kafka_broker.bootstrap],
                app.input_topic,
                ((str(uuid.uuid4()).encode(), value) for value in [*micro, *bad_inputs]),
            )
        )
        deadline = time.monotonic() + 60
        samples: Samples = {}
        while time.monotonic() < deadline:
            content_type, samples = _scrape(worker)
            received = _value(samples, "signals_events_in_total", topic=entity_topic)
            done = (
                _value(samples, "signals_events_in_total", topic=app.input_topic)
                == good + len(bad_inputs)
                and received > 0
                and received == _value(samples, "signals_events_out_total", topic=entity_topic)
                and _value(samples, "signals_events_applied_total") == received
            )
            if done:
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"{samples}\n{worker.log_tail()}")

        assert content_type.startswith("text/plain; version=0.0.4")
        assert _value(samples, "signals_good_events_total") == good
        for reason, count in expected_reasons.items():
            assert _value(samples, "signals_bad_events_total", reason=reason) == count, reason
        bad_total = sum(v for (name, _), v in samples.items() if name == "signals_bad_events_total")
        assert bad_total == len(bad_inputs)
        assert _value(samples, "signals_events_out_total", topic=app.bad_topic) == len(bad_inputs)
        assert _value(samples, "signals_events_out_total", topic=app.out_topic) == 0
        applied = _value(samples, "signals_events_applied_total")
        # Every good event reaches at least its user and its session row.
        assert applied >= 2 * good
        assert 1 <= _value(samples, "signals_rows_written_total") <= applied
        assert _value(samples, "signals_replays_skipped_total") == 0

        # One observation per good event, and one per applied entity event.
        count = "signals_latency_seconds_count"
        assert _value(samples, count, stage="event_to_processed") == good
        assert _value(samples, count, stage="processed_to_visible") == applied
        # The micro events are from the past: all older than a minute, none older than +Inf.
        bucket = "signals_latency_seconds_bucket"
        assert _value(samples, bucket, stage="event_to_processed", le="60.0") == 0
        assert _value(samples, bucket, stage="event_to_processed", le="+Inf") == good
        assert _value(samples, bucket, stage="processed_to_visible", le="60.0") == applied

        # Lag per owned partition of both agents' topics; nothing is left behind.
        lag = {
            labels: value
            for (name, labels), value in samples.items()
            if name == "signals_consumer_lag"
        }
        topics = {dict(labels)["topic"] for labels in lag}
        assert topics == {app.input_topic, entity_topic}, lag
        inputs = [v for labels, v in lag.items() if dict(labels)["topic"] == app.input_topic]
        assert len(inputs) == app.partitions and all(v == 0 for v in inputs), lag

        # An open SSE stream is counted while it is open.
        assert _value(samples, "signals_sse_streams_open") == 0
        stream = urllib.request.urlopen(
            worker.url + "/api/v1/interventions?domain_userid=someone", timeout=5
        )
        try:
            assert stream.readline() == b": connected\n"
            assert _value(_scrape(worker)[1], "signals_sse_streams_open") == 1
        finally:
            stream.close()
