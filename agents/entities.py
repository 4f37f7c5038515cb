"""Entity agent: folds re-keyed events into the entity's state row, exactly once in effect."""

from __future__ import annotations

import logging
import time

from faust.types import StreamT

from agents.ingest import ingest_stats
from signals_stream.app import app, entity_events_topic
from signals_stream.engine import fold_events, prune_row
from signals_stream.events import Event
from signals_stream.live import current_catalog
from signals_stream.routing import decode_envelope, entity_row_key
from signals_stream.state import decode_row, encode_row
from tables.entity_state import entity_state

__all__ = ["entities"]

logger = logging.getLogger(__name__)


@app.agent(entity_events_topic, name="entities", concurrency=1)
async def entities(stream: StreamT[bytes]) -> None:
    """One table read and one write per record. A record at or below the offset stored in the
    row (same changelog record as the values) is a replay: its events are not applied again."""
    async for event in stream.events():
        message = event.message
        key_name, projections = decode_envelope(message.value)
        row_key = entity_row_key(key_name, message.key)
        raw = entity_state.get(row_key)
        row = decode_row(raw)
        if row.already_applied(message.topic, message.offset):
            # A replay after a crash. The local row may be ahead of its changelog (killed before
            # the send was flushed): write it again so the changelog catches up.
            ingest_stats.replays_skipped += 1
            entity_state[row_key] = raw
            continue
        now_ms = int(time.time() * 1000)
        events = [Event.from_projection(p) for p in projections]
        program = current_catalog().programs.get(key_name)
        if program is not None:
            fold_events(row, program, events, now_ms)
        prune_row(row, program, now_ms)
        row.record_applied(events, topic=message.topic, offset=message.offset, now_ms=now_ms)
        entity_state[row_key] = encode_row(row)
