"""Entity agent: folds re-keyed events into entity state rows, exactly once in effect."""

from __future__ import annotations

from faust.types import StreamT

from agents.counters import ingest_stats
from agents.state_writer import PendingRows, add_event, write_rows
from signals_stream.app import app, entity_events_topic, settings
from signals_stream.routing import decode_entity_events

__all__ = ["entities"]


@app.agent(entity_events_topic, name="entities", concurrency=1)
async def entities(stream: StreamT[bytes]) -> None:
    """Per batch: one table read and at most one write per entity row (see ``state_writer``)."""
    async for batch in stream.take_events(
        settings.agent_batch_size, within=settings.agent_batch_within_ms / 1000
    ):
        ingest_stats.entity_batches += 1
        pending: PendingRows = {}
        for record in batch:
            for item in decode_entity_events(record.message.value):
                add_event(pending, item, record)
        write_rows(pending)
