"""Ingestion agent: Snowplow enriched records in, dead letters or per-entity envelopes out."""

from __future__ import annotations

import logging
import time

from faust.types import EventT, StreamT

from signals_stream.app import app, bad_events_topic, entity_events_topic, input_topic, settings
from signals_stream.deadletter import dead_letter_record
from signals_stream.errors import BadEvent
from signals_stream.events import parse_record
from signals_stream.live import current_plan
from signals_stream.routing import SourcedProjection, encode_envelope, entity_projections
from signals_stream.stats import IngestStats

__all__ = ["ingest", "ingest_stats"]

logger = logging.getLogger(__name__)
ingest_stats = IngestStats()


@app.agent(input_topic, name="ingest")
async def ingest(stream: StreamT[bytes]) -> None:
    """Parse a batch; bad records go to the dead-letter topic; the good ones leave as one
    envelope per entity per batch (in input order), so the entity agent writes each row once."""
    async for batch in stream.take_events(
        settings.agent_batch_size, within=settings.agent_batch_within_ms / 1000
    ):
        plan = current_plan()
        envelopes: dict[tuple[bytes, str], list[SourcedProjection]] = {}
        for event in batch:
            message = event.message
            value = message.value
            try:
                parsed = parse_record(value if value is not None else b"")
            except BadEvent as error:
                await _dead_letter(event, error)
                continue
            ingest_stats.good += 1
            for key_name, entity_id, projection in entity_projections(parsed, plan):
                envelopes.setdefault((entity_id, key_name), []).append(
                    (message.partition, message.offset, projection)
                )
        for (entity_id, key_name), sourced in envelopes.items():
            await entity_events_topic.send(key=entity_id, value=encode_envelope(key_name, sourced))
            ingest_stats.forwarded += len(sourced)


async def _dead_letter(event: EventT, error: BadEvent) -> None:
    message = event.message
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


@app.timer(interval=30.0)
async def log_ingest_stats() -> None:
    if ingest_stats.good or ingest_stats.bad:
        logger.info("ingest: %s", ingest_stats.summary())
