"""Entity agent: folds re-keyed events into entity state rows, exactly once in effect."""

from __future__ import annotations

import logging
import time

from faust.types import EventT, StreamT

from agents.ingest import ingest_stats
from signals_stream.app import app, entity_events_topic, settings
from signals_stream.engine import apply_record
from signals_stream.live import current_catalog
from signals_stream.routing import decode_envelope, entity_row_key
from signals_stream.state import EntityRow, decode_row, encode_row
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
    rows: dict[bytes, tuple[EntityRow, EventT]] = {}
    for event in batch:
        message = event.message
        key_name, sourced = decode_envelope(message.value)
        row_key = entity_row_key(key_name, message.key)
        cached = rows.get(row_key)
        if cached is None:
            with as_current_event(event):
                row = decode_row(entity_state.get(row_key))
        else:
            row = cached[0]
        ingest_stats.replays_skipped += apply_record(row, catalog, key_name, sourced, now_ms=now_ms)
        rows[row_key] = (row, event)
    for row_key, (row, event) in rows.items():
        with as_current_event(event):
            entity_state[row_key] = encode_row(row)
