"""``GET /metrics``: this worker's metrics in the Prometheus text format.

Unauthenticated, like ``/healthz``: infrastructure endpoints hold counts, latencies and topic
names, never an entity id or an attribute value, and scrapers rarely carry bearer tokens.
Consumer lag is read from Faust's consumer (and the lean ingest consumer, which reads the input
topic in ``SIGNALS_INGEST_MODE=lean``) at scrape time; everything else comes from the worker's
counters (``signals_stream.ops.metrics``).
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from faust.types import TP
from faust.web import Request, Response
from prometheus_client import CollectorRegistry, generate_latest

from signals_stream.api.base import WorkerView, add_page
from signals_stream.ops.metrics import StreamCollector, TopicNames, new_registry
from signals_stream.worker_state import WorkerState

__all__ = ["MetricsView", "consumer_lag", "register_metrics_view"]

_POSITION_TIMEOUT_S = 1.0
# The classic text format's label, which every scraper knows: our names are plain ASCII, so the
# bytes are what newer prometheus-client versions label version=1.0.0.
_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def metrics_registry(state: WorkerState, lag: dict[tuple[str, int], int]) -> CollectorRegistry:
    """The worker's collector over its counters; ``lag`` is refreshed before each scrape."""
    settings = state.settings
    return new_registry(
        StreamCollector(
            state.stats,
            TopicNames(
                input=settings.input_topic,
                bad_events=settings.bad_events_topic,
                entity_events=state.topics.entity_events_name,
                interventions=settings.interventions_topic,
            ),
            latencies={
                "event_to_processed": state.event_to_processed,
                "processed_to_visible": state.processed_to_visible,
            },
            open_streams=lambda: state.hub.open_streams,
            rows_swept=lambda: state.rows_swept,
            lag=lambda: lag,
            mirror=None if state.mirror is None else state.mirror.stats,
            backfills=state.backfills.to_json,
        )
    )


async def consumer_lag(state: WorkerState) -> dict[tuple[str, int], int]:
    """``highwater - position`` of every partition of the agents' topics this worker owns.

    Partitions without a known highwater (nothing fetched yet) or position are left out, and
    so is everything while the consumer is not started or is being rebalanced: a scrape must
    never fail for it.
    """
    consumer = state.app.consumer
    topics = {state.settings.input_topic, state.topics.entity_events_name}
    try:
        owned = [tp for tp in consumer.assignment() if tp.topic in topics]
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
    return lags | await state.input_lag()


class MetricsView(WorkerView):
    lag: ClassVar[dict[tuple[str, int], int]]
    registry: ClassVar[CollectorRegistry]

    async def get(self, request: Request) -> Response:
        lag = await consumer_lag(self.state)
        self.lag.clear()  # read by the collector during generate_latest, below
        self.lag.update(lag)
        # The content type carries a charset, which aiohttp refuses in ``content_type``.
        body = generate_latest(self.registry)
        return self.bytes(body, headers={"Content-Type": _CONTENT_TYPE})


def register_metrics_view(state: WorkerState) -> None:
    lag: dict[tuple[str, int], int] = {}
    add_page(state, "/metrics", MetricsView, lag=lag, registry=metrics_registry(state, lag))
