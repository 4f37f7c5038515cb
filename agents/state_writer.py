"""Fold a batch's entity events into entity rows: one read and one write per entity.

Used by the entity agent (events that crossed the entity-events topic) and by the ingest agent
for the attribute key the input is already keyed by (``SIGNALS_INPUT_KEYED_BY``), whose events
skip that hop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from functools import partial

import orjson
from aiokafka.structs import RecordMetadata
from faust.types import EventT

from agents.counters import ingest_stats
from signals_stream.app import app, settings
from signals_stream.engine import apply_record, fire_interventions, watched_values
from signals_stream.engine.installed import current_catalog
from signals_stream.engine.row import decode_row, encode_row
from signals_stream.routing.rekey import EntityEvent, entity_row_key, split_row_key
from tables.entity_rows import RowWriter

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

    A row whose update fired is written only once the broker has acknowledged its
    interventions. The row records the firing (latch and offsets), and RocksDB survives a
    SIGKILL while the producer's buffer does not: written first, a crash could keep the row and
    lose the intervention. This way a crash loses the row update instead; the replay rebuilds
    it and fires again with the same id (at least once).
    """
    catalog = current_catalog()
    now_ms = int(time.time() * 1000)
    fired_rows: list[tuple[bytes, bytes, EventT]] = []
    acks: list[Awaitable[RecordMetadata]] = []
    for row_key, (key_name, sourced, record) in pending.items():
        raw = _writer.get(row_key, record)  # from the partition of ``record``
        row = decode_row(raw)
        watched = bool(catalog.rules.watched(key_name))
        previous = watched_values(row, catalog, key_name, now_ms) if watched else {}
        done = apply_record(row, catalog, key_name, sourced, now_ms=now_ms, dedupe_ids=_dedupe_ids)
        instances = []
        if watched and done.events:
            entity_id = split_row_key(row_key)[1].decode()
            instances = fire_interventions(
                row,
                catalog,
                key_name,
                entity_id,
                previous,
                done.events,
                now_ms,
                before=partial(decode_row, raw),
            )
        if instances:
            for instance in instances:
                target = instance["target_attribute_key"]["id"].encode()
                acks.append(
                    await app.producer.send(
                        _interventions_topic, target, orjson.dumps(instance), None, None, None
                    )
                )
            fired_rows.append((row_key, encode_row(row), record))
        else:
            await _writer.put(row_key, encode_row(row), record)
        ingest_stats.replays_skipped += done.replays
        ingest_stats.duplicates_dropped += done.duplicates
        ingest_stats.applied += done.applied
        ingest_stats.interventions += len(instances)
    if fired_rows:
        await asyncio.gather(*acks)  # a failed send raises: the rows stay unwritten
        for row_key, value, record in fired_rows:
            await _writer.put(row_key, value, record)
    ingest_stats.rows_written += len(pending)
    _writer.finish_batch()
