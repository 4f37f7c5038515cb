"""Entity agent: folds re-keyed events into entity state rows, exactly once in effect."""

from __future__ import annotations

import logging
import time

from faust.types import EventT, StreamT

from agents.ingest import ingest_stats
from signals_stream.app import app, entity_events_topic, settings
from signals_stream.engine import apply_record
from signals_stream.live import current_catalog
from signals_stream.routing import decode_entity_events, entity_row_key
from signals_stream.state import decode_row, encode_row
from tables.current_event import as_current_event
from tables.entity_state import entity_state

__all__ = ["entities"]

logger = logging.getLogger(__name__)


@app.agent(entity_events_topic, name="entities", concurrency=1)
async def entities(stream: StreamT[bytes]) -> None:
    """Per batch: one table read and at most one write per entity row.

    An event at or below the input offset stored in its row for its input partition (same
    changelog record as the values) is a replay and is not applied again; the row is still
    written once, so a changelog that lagged the local store at a crash catches up.
    """
    async for batch in stream.take_events(
        settings.agent_batch_size, within=settings.agent_batch_within_ms / 1000
    ):
        apply_batch(batch)


def apply_batch(batch: list[EventT]) -> None:
    catalog = current_catalog()
    now_ms = int(time.time() * 1000)
    # Every entity's events of the batch, in order, with a record of its partition (the table
    # reads and writes the partition of the "current event").
    pending: dict[bytes, tuple[str, list[tuple[int, int, bytes]], EventT]] = {}
    for event in batch:
        for key_name, entity_id, partition, offset, projection in decode_entity_events(
            event.message.value
        ):
            row_key = entity_row_key(key_name, entity_id)
            entry = pending.get(row_key)
            if entry is None:
                pending[row_key] = (key_name, [(partition, offset, projection)], event)
            else:
                entry[1].append((partition, offset, projection))
    for row_key, (key_name, sourced, event) in pending.items():
        with as_current_event(event):
            row = decode_row(entity_state.get(row_key))
            replays = apply_record(row, catalog, key_name, sourced, now_ms=now_ms)
            entity_state[row_key] = encode_row(row)
        ingest_stats.replays_skipped += replays
        ingest_stats.applied += len(sourced) - replays
