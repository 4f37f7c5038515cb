"""Fold a batch's entity events into entity rows: one read and one write per entity.

Used by the entity agent (events that crossed the entity-events topic) and by the ingest agent
for the attribute key the input is already keyed by (``SIGNALS_INPUT_KEYED_BY``), whose events
skip that hop.
"""

from __future__ import annotations

import time

import orjson
from faust.types import EventT

from agents.counters import ingest_stats
from signals_stream.app import app, settings
from signals_stream.engine import apply_record, fire_interventions, watched_values
from signals_stream.live import current_catalog
from signals_stream.routing import EntityEvent, entity_row_key, split_row_key
from signals_stream.state import decode_row, encode_row
from tables.current_event import as_current_event
from tables.entity_state import RowWriter, entity_state

__all__ = ["PendingRows", "add_event", "write_rows"]

_dedupe_ids = settings.dedupe_event_ids
_writer = RowWriter()
_interventions_topic = settings.interventions_topic

# row key -> (key name, [(input partition, input offset, projection)], a record of its partition)
PendingRows = dict[bytes, tuple[str, list[tuple[int, int, bytes]], EventT]]


def add_event(pending: PendingRows, item: EntityEvent, record: EventT) -> None:
    """Queue one entity event; ``record`` is a Kafka record of the row's table partition."""
    key_name, entity_id, partition, offset, projection = item
    row_key = entity_row_key(key_name, entity_id)
    entry = pending.get(row_key)
    if entry is None:
        pending[row_key] = (key_name, [(partition, offset, projection)], record)
    else:
        entry[1].append((partition, offset, projection))


async def write_rows(pending: PendingRows) -> None:
    """Apply every queued entity's events and write its row once; evaluate the rules that watch
    the entity's attributes and send what fires to the interventions topic.

    An event at or below the input offset stored in its row for its input partition (same
    changelog record as the values) is a replay and is not applied again; the row is still
    written, so a changelog that lagged the local store at a crash catches up.
    """
    catalog = current_catalog()
    now_ms = int(time.time() * 1000)
    for row_key, (key_name, sourced, record) in pending.items():
        # Faust tables read and write the partition of the "current event".
        with as_current_event(record):
            row = decode_row(entity_state.get(row_key))
        watched = bool(catalog.rules.watched(key_name))
        previous = watched_values(row, catalog, key_name, now_ms) if watched else {}
        done = apply_record(row, catalog, key_name, sourced, now_ms=now_ms, dedupe_ids=_dedupe_ids)
        instances = []
        if watched and done.last_event is not None:
            entity_id = split_row_key(row_key)[1].decode()
            instances = fire_interventions(
                row, catalog, key_name, entity_id, previous, done.last_event, now_ms
            )
        await _writer.put(row_key, encode_row(row), record)
        for instance in instances:
            target = instance["target_attribute_key"]["id"].encode()
            await app.producer.send(
                _interventions_topic, target, orjson.dumps(instance), None, None, None
            )
        ingest_stats.replays_skipped += done.replays
        ingest_stats.duplicates_dropped += done.duplicates
        ingest_stats.applied += done.applied
        ingest_stats.interventions += len(instances)
    _writer.finish_batch()
