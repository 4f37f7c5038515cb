"""This worker's processing counters, shared by the agents (logged; served on /stats)."""

from __future__ import annotations

from signals_stream.stats import IngestStats

__all__ = ["ingest_stats"]

ingest_stats = IngestStats()
