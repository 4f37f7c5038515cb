"""This worker's processing counters, shared by the agents (logged; served on /stats and
/metrics)."""

from __future__ import annotations

from signals_stream.ops.latency import BatchHistogram
from signals_stream.ops.stats import IngestStats

__all__ = ["event_to_processed", "ingest_stats", "processed_to_visible"]

ingest_stats = IngestStats()
# Event time (derived_tstamp, else collector_tstamp) -> the ingest agent has routed the event.
event_to_processed = BatchHistogram()
# Routed by the ingest agent -> its entity row is written (readable on /tables, /entities).
processed_to_visible = BatchHistogram()
