"""This worker's counters as Prometheus metric families, built when /metrics is scraped.

The agents keep plain integers (``stats.IngestStats``) and batch-fed histograms
(``latency.BatchHistogram``); this collector reads them at scrape time, so the hot path pays
nothing for Prometheus. It lives in its own ``CollectorRegistry`` (see :func:`new_registry`):
the process-global one would mix in whatever else registers there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from signals_stream.ops.latency import BatchHistogram
from signals_stream.ops.stats import IngestStats
from signals_stream.profiles.mirror import MirrorStats

__all__ = ["StreamCollector", "TopicNames", "new_registry"]


@dataclass(frozen=True, slots=True)
class TopicNames:
    """The topics the counters refer to (labels of the per-topic counters)."""

    input: str
    bad_events: str
    entity_events: str
    interventions: str


class StreamCollector:
    """Metric families from the worker's counters, histograms and live gauges.

    Args:
        stats: the agents' counters.
        topics: topic names for the ``topic`` labels.
        latencies: per-stage latency histograms, by stage name.
        open_streams: the number of open Server-Sent Events streams.
        rows_swept: expired entity rows deleted so far.
        lag: records behind the log end per ``(topic, partition)`` this worker consumes.
        mirror: the Redis profiles mirror's counters, when ``SIGNALS_REDIS_URL`` is set.
        backfills: the backfill tasks this worker runs or ran (their JSON, ``/stats``).
    """

    def __init__(
        self,
        stats: IngestStats,
        topics: TopicNames,
        *,
        latencies: Mapping[str, BatchHistogram],
        open_streams: Callable[[], int],
        rows_swept: Callable[[], int],
        lag: Callable[[], Mapping[tuple[str, int], int]],
        mirror: MirrorStats | None = None,
        backfills: Callable[[], Sequence[Mapping[str, object]]] = list,
    ) -> None:
        self._backfills = backfills
        self._stats = stats
        self._topics = topics
        self._latencies = latencies
        self._open_streams = open_streams
        self._rows_swept = rows_swept
        self._lag = lag
        self._mirror = mirror

    def collect(self) -> Iterator[Metric]:
        stats, topics = self._stats, self._topics
        bad_total = sum(stats.bad.values())

        events_in = CounterMetricFamily(
            "signals_events_in",
            "Records read, by topic (input: good and bad; entity events: events received).",
            labels=["topic"],
        )
        events_in.add_metric([topics.input], stats.good + bad_total)
        events_in.add_metric([topics.entity_events], stats.entity_events_received)
        yield events_in

        events_out = CounterMetricFamily(
            "signals_events_out",
            "Records written, by topic (dead letters, entity events, interventions).",
            labels=["topic"],
        )
        # Dead letters waiting for a retry are not written yet.
        events_out.add_metric([topics.bad_events], bad_total - stats.dead_letters_pending)
        events_out.add_metric([topics.entity_events], stats.forwarded)
        events_out.add_metric([topics.interventions], stats.interventions)
        yield events_out

        yield _counter("signals_good_events", "Input records parsed as events.", stats.good)
        bad = CounterMetricFamily(
            "signals_bad_events", "Input records sent to the dead-letter topic.", labels=["reason"]
        )
        for reason, count in sorted(stats.bad.items()):
            bad.add_metric([reason], count)
        yield bad

        yield _counter(
            "signals_dead_letter_send_failures",
            "Attempts to write a dead letter that the bad-events topic refused or timed out.",
            stats.dead_letter_send_failures,
        )
        yield GaugeMetricFamily(
            "signals_dead_letters_pending",
            "Dead letters waiting for a retry; the input offset is held before the first.",
            value=stats.dead_letters_pending,
        )

        yield _counter("signals_events_applied", "Events folded into entity rows.", stats.applied)
        yield _counter(
            "signals_rows_written",
            "Entity rows written (one per entity per batch).",
            stats.rows_written,
        )
        yield _counter(
            "signals_replays_skipped",
            "Re-delivered events skipped (already applied to their row).",
            stats.replays_skipped,
        )
        yield _counter(
            "signals_duplicates_dropped",
            "Events dropped as a recent duplicate event_id (SIGNALS_DEDUPE_EVENT_IDS).",
            stats.duplicates_dropped,
        )
        yield _counter(
            "signals_interventions_fired",
            "Intervention instances sent (one per target).",
            stats.interventions,
        )
        yield _counter("signals_rows_swept", "Expired entity rows deleted.", self._rows_swept())
        batches = CounterMetricFamily(
            "signals_agent_batches", "Batches processed, by agent.", labels=["agent"]
        )
        batches.add_metric(["ingest"], stats.input_batches)
        batches.add_metric(["entities"], stats.entity_batches)
        yield batches

        yield GaugeMetricFamily(
            "signals_sse_streams_open",
            "Open Server-Sent Events streams (GET /api/v1/interventions).",
            value=self._open_streams(),
        )
        lag = GaugeMetricFamily(
            "signals_consumer_lag",
            "Records behind the log end (highwater - position), per consumed partition.",
            labels=["topic", "partition"],
        )
        for (topic, partition), records in sorted(self._lag().items()):
            lag.add_metric([topic, str(partition)], records)
        yield lag

        if self._mirror is not None:
            yield from _mirror_metrics(self._mirror)
        yield from _backfill_metrics(stats, self._backfills())

        latency = HistogramMetricFamily(
            "signals_latency_seconds",
            "Per-stage latency: event_to_processed (event time, derived_tstamp else "
            "collector_tstamp, to ingested), processed_to_visible (ingested to row written).",
            labels=["stage"],
        )
        for stage, histogram in self._latencies.items():
            latency.add_metric(
                [stage],
                [(floatToGoString(bound), count) for bound, count in histogram.cumulative()],
                sum_value=histogram.sum,
            )
        yield latency


def _backfill_metrics(
    stats: IngestStats, tasks: Sequence[Mapping[str, object]]
) -> Iterator[Metric]:
    labels = ["backfill", "group", "partition"]
    remaining = GaugeMetricFamily(
        "signals_backfill_remaining_records",
        "Input records a backfill task still has to read, per input partition.",
        labels=labels,
    )
    read = CounterMetricFamily(
        "signals_backfill_records", "Input records read by a backfill task.", labels=labels
    )
    for task in tasks:
        values = [str(task["backfill"]), str(task["group"]), str(task["partition"])]
        remaining.add_metric(values, float(str(task["remaining"])))
        read.add_metric(values, float(str(task["read"])))
    yield remaining
    yield read
    yield _counter(
        "signals_backfill_events_applied",
        "Backfill-road events folded into entity rows on this worker.",
        stats.backfill_applied,
    )


def _mirror_metrics(mirror: MirrorStats) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "signals_redis_up", "1 when the last Redis round trip succeeded.", value=mirror.redis_up
    )
    yield GaugeMetricFamily(
        "signals_redis_mirror_lag_rows",
        "Entity rows written to the table and not yet to Redis.",
        value=mirror.lag_rows,
    )
    yield GaugeMetricFamily(
        "signals_redis_resyncing_partitions",
        "Partitions whose Redis copy is being rebuilt.",
        value=mirror.resyncing_partitions,
    )
    yield _counter("signals_redis_rows_written", "Rows set in Redis.", mirror.written)
    yield _counter("signals_redis_rows_deleted", "Rows removed from Redis.", mirror.deleted)
    yield _counter("signals_redis_errors", "Failed Redis round trips.", mirror.errors)
    yield _counter("signals_redis_rows_resynced", "Rows copied by resyncs.", mirror.resynced_rows)
    yield _counter(
        "signals_redis_overflows",
        "Times the mirror queue outgrew its bound and fell back to a resync.",
        mirror.overflows,
    )


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def new_registry(collector: StreamCollector) -> CollectorRegistry:
    """A registry of its own holding only ``collector``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry
