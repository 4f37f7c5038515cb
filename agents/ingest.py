"""Ingestion agent: Snowplow enriched records in, dead letters or per-entity records out."""

from __future__ import annotations

import logging
import time

from faust.types import StreamT

from signals_stream.app import app, bad_events_topic, entity_events_topic, input_topic
from signals_stream.deadletter import dead_letter_record
from signals_stream.errors import BadEvent
from signals_stream.events import parse_record
from signals_stream.live import current_plan
from signals_stream.routing import route_event
from signals_stream.stats import IngestStats

__all__ = ["ingest", "ingest_stats"]

logger = logging.getLogger(__name__)
ingest_stats = IngestStats()


@app.agent(input_topic, name="ingest")
async def ingest(stream: StreamT[bytes]) -> None:
    """Parse each record; bad ones go to the dead-letter topic, good ones are re-keyed."""
    async for event in stream.events():
        message = event.message
        try:
            parsed = parse_record(message.value if message.value is not None else b"")
        except BadEvent as error:
            ingest_stats.bad[error.reason_kind] += 1
            await bad_events_topic.send(
                key=message.key,
                value=dead_letter_record(
                    message.value or b"",
                    error,
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    key=message.key,
                    failed_at_ms=int(time.time() * 1000),
                ),
            )
            continue
        ingest_stats.good += 1
        for entity_id, envelope in route_event(parsed, current_plan()):
            await entity_events_topic.send(key=entity_id, value=envelope)
            ingest_stats.forwarded += 1


@app.timer(interval=30.0)
async def log_ingest_stats() -> None:
    if ingest_stats.good or ingest_stats.bad:
        logger.info("ingest: %s", ingest_stats.summary())
