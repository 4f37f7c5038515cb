"""``GET /metrics``: this worker's metrics in the Prometheus text format.

Unauthenticated, like ``/healthz``: infrastructure endpoints hold counts, latencies and topic
names, never an entity id or an attribute value, and scrapers rarely carry bearer tokens.
Consumer lag is read from Faust's consumer (and the lean ingest consumer, which reads the input
topic in ``SIGNALS_INGEST_MODE=lean``) at scrape time; everything else comes from the agents'
counters (``signals_stream.ops.metrics``).
"""

from __future__ import annotations

import asyncio

from faust.types import TP
from faust.web import Request, Response, View
from prometheus_client import generate_latest

from agents.counters import event_to_processed, ingest_stats, processed_to_visible
from agents.entities import sweeper
from agents.interventions_tail import hub
from agents.lean_ingest import input_lag
from signals_stream.app import ENTITY_EVENTS_TOPIC, app, settings
from signals_stream.ops.metrics import StreamCollector, TopicNames, new_registry
from tables.entity_rows import mirror

__all__ = ["MetricsView", "consumer_lag", "registry"]

_LAG_TOPICS = frozenset({settings.input_topic, ENTITY_EVENTS_TOPIC})
_POSITION_TIMEOUT_S = 1.0
# The classic text format's label, which every scraper knows: our names are plain ASCII, so the
# bytes are what newer prometheus-client versions label version=1.0.0.
_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_lag: dict[tuple[str, int], int] = {}

registry = new_registry(
    StreamCollector(
        ingest_stats,
        TopicNames(
            input=settings.input_topic,
            bad_events=settings.bad_events_topic,
            entity_events=ENTITY_EVENTS_TOPIC,
            interventions=settings.interventions_topic,
        ),
        latencies={
            "event_to_processed": event_to_processed,
            "processed_to_visible": processed_to_visible,
        },
        open_streams=lambda: hub.open_streams,
        rows_swept=lambda: sweeper.deleted,
        lag=lambda: _lag,
        mirror=None if mirror is None else mirror.stats,
    )
)


async def consumer_lag() -> dict[tuple[str, int], int]:
    """``highwater - position`` of every partition of the agents' topics this worker owns.

    Partitions without a known highwater (nothing fetched yet) or position are left out, and
    so is everything while the consumer is not started or is being rebalanced: a scrape must
    never fail for it.
    """
    consumer = app.consumer
    try:
        owned = [tp for tp in consumer.assignment() if tp.topic in _LAG_TOPICS]
    except Exception:  # not started yet, or between assignments
        return {}

    async def one(tp: TP) -> tuple[TP, int] | None:
        try:
            highwater = consumer.highwater(tp)
            position = await asyncio.wait_for(consumer.position(tp), _POSITION_TIMEOUT_S)
        except Exception:  # the partition moved away mid-scrape
            return None
        if highwater is None or position is None:
            return None
        return tp, max(0, highwater - position)

    found = await asyncio.gather(*(one(tp) for tp in owned))
    lags = {(tp.topic, tp.partition): lag for tp, lag in filter(None, found)}
    return lags | await input_lag()


@app.page("/metrics")
class MetricsView(View):
    async def get(self, request: Request) -> Response:
        lag = await consumer_lag()
        _lag.clear()  # read by the collector during generate_latest, below
        _lag.update(lag)
        # The content type carries a charset, which aiohttp refuses in ``content_type``.
        return self.bytes(generate_latest(registry), headers={"Content-Type": _CONTENT_TYPE})
