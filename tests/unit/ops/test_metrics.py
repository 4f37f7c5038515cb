"""Batch-fed latency histograms and the Prometheus exposition of the worker's counters."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from signals_stream.ops.latency import BatchHistogram
from signals_stream.ops.metrics import StreamCollector, TopicNames, new_registry
from signals_stream.ops.stats import IngestStats
from signals_stream.profiles.mirror import MirrorStats

NOW_MS = 1_700_000_000_000


@given(st.lists(st.integers(NOW_MS - 5_000_000, NOW_MS + 5_000), max_size=300))
def test_a_batch_of_event_times_counts_like_one_observation_each(times_ms: list[int]) -> None:
    batched, single = BatchHistogram(), BatchHistogram()
    batched.observe_ages(list(times_ms), NOW_MS)
    for time_ms in times_ms:
        single.observe((NOW_MS - time_ms) / 1000)
    assert batched.cumulative() == single.cumulative()
    assert batched.count == single.count == len(times_ms)
    assert math.isclose(batched.sum, single.sum, rel_tol=1e-9, abs_tol=1e-6)


def test_weighted_observations_and_clock_skew() -> None:
    histogram = BatchHistogram((0.1, 1.0))
    histogram.observe(0.5, 3)  # three events of one record
    histogram.observe(-2.0)  # the sender's clock is ahead: counted as 0
    histogram.observe(7.0, 0)  # an empty record adds nothing
    histogram.observe(7.0)
    assert histogram.cumulative() == [(0.1, 1), (1.0, 4), (math.inf, 5)]
    assert histogram.count == 5 and histogram.sum == 8.5


def _families(collector: StreamCollector) -> dict[str, dict[tuple, float]]:
    """Metric family name -> {(sample name, sorted labels): value}."""
    text = generate_latest(new_registry(collector)).decode()
    return {
        family.name: {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for sample in family.samples
        }
        for family in text_string_to_metric_families(text)
    }


def test_the_collector_exposes_the_counters_by_topic_reason_and_stage() -> None:
    stats = IngestStats()
    stats.good, stats.forwarded, stats.entity_events_received = 10, 18, 18
    stats.applied, stats.rows_written, stats.replays_skipped = 20, 4, 2
    stats.interventions, stats.input_batches, stats.entity_batches = 3, 2, 5
    stats.bad.update({"NotUtf8": 1, "FieldNumberMismatch(130)": 2})
    stats.dead_letter_send_failures, stats.dead_letters_pending = 4, 2
    latency = BatchHistogram()
    latency.observe(0.02, 18)
    topics = TopicNames("in", "bad", "app-entity-events", "out")
    collector = StreamCollector(
        stats,
        topics,
        latencies={"processed_to_visible": latency, "event_to_processed": BatchHistogram()},
        open_streams=lambda: 7,
        rows_swept=lambda: 9,
        lag=lambda: {("in", 0): 5, ("in", 3): 0},
    )
    metrics = _families(collector)

    assert metrics["signals_events_in"] == {
        ("signals_events_in_total", (("topic", "in"),)): 13.0,
        ("signals_events_in_total", (("topic", "app-entity-events"),)): 18.0,
    }
    assert metrics["signals_events_out"] == {
        ("signals_events_out_total", (("topic", "bad"),)): 1.0,  # 2 of 3 wait for a retry
        ("signals_events_out_total", (("topic", "app-entity-events"),)): 18.0,
        ("signals_events_out_total", (("topic", "out"),)): 3.0,
    }
    assert metrics["signals_bad_events"] == {
        ("signals_bad_events_total", (("reason", "FieldNumberMismatch(130)"),)): 2.0,
        ("signals_bad_events_total", (("reason", "NotUtf8"),)): 1.0,
    }
    for name, value in [
        ("signals_good_events", 10),
        ("signals_events_applied", 20),
        ("signals_rows_written", 4),
        ("signals_replays_skipped", 2),
        ("signals_interventions_fired", 3),
        ("signals_rows_swept", 9),
        ("signals_dead_letter_send_failures", 4),
    ]:
        assert metrics[name] == {(f"{name}_total", ()): value}
    assert metrics["signals_sse_streams_open"] == {("signals_sse_streams_open", ()): 7.0}
    assert metrics["signals_dead_letters_pending"] == {("signals_dead_letters_pending", ()): 2.0}
    assert metrics["signals_consumer_lag"] == {
        ("signals_consumer_lag", (("partition", "0"), ("topic", "in"))): 5.0,
        ("signals_consumer_lag", (("partition", "3"), ("topic", "in"))): 0.0,
    }
    histogram = metrics["signals_latency_seconds"]
    stage = ("stage", "processed_to_visible")
    assert histogram[("signals_latency_seconds_count", (stage,))] == 18
    assert math.isclose(histogram[("signals_latency_seconds_sum", (stage,))], 0.36)
    assert histogram[("signals_latency_seconds_bucket", (("le", "0.01"), stage))] == 0
    assert histogram[("signals_latency_seconds_bucket", (("le", "0.025"), stage))] == 18
    assert histogram[("signals_latency_seconds_bucket", (("le", "+Inf"), stage))] == 18
    empty = ("stage", "event_to_processed")
    assert histogram[("signals_latency_seconds_count", (empty,))] == 0


def test_the_redis_mirror_is_exported_only_when_configured() -> None:
    def collector(mirror: MirrorStats | None) -> StreamCollector:
        return StreamCollector(
            IngestStats(),
            TopicNames("in", "bad", "app-entity-events", "out"),
            latencies={},
            open_streams=lambda: 0,
            rows_swept=lambda: 0,
            lag=dict,
            mirror=mirror,
        )

    assert "signals_redis_up" not in _families(collector(None))
    stats = MirrorStats()
    stats.redis_up, stats.lag_rows, stats.errors, stats.written = False, 42, 3, 1000
    families = _families(collector(stats))
    assert families["signals_redis_up"] == {("signals_redis_up", ()): 0.0}
    assert families["signals_redis_mirror_lag_rows"] == {("signals_redis_mirror_lag_rows", ()): 42}
    assert families["signals_redis_errors"] == {("signals_redis_errors_total", ()): 3}
    assert families["signals_redis_rows_written"] == {
        ("signals_redis_rows_written_total", ()): 1000
    }
