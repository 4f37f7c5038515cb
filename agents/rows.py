"""Fold a batch's entity events into entity rows: one read and one write per entity.

The I/O around the pure step (``engine.step.step_row``): read each row, step it, send what
fired, wait for those acknowledgements, write the rows. Used by the entity agent (events that
crossed the entity-events topic) and by the Faust ingest agent for the attribute key the input
is already keyed by (``SIGNALS_INPUT_KEYED_BY``), whose events skip that hop.
"""

from __future__ import annotations

import asyncio
import time
from typing import NamedTuple, cast

import orjson

from agents.loop_turns import LoopTurns
from signals_stream.engine import SourcedEvent, step_row
from signals_stream.engine.backfill import apply_backfill
from signals_stream.engine.row import decode_row, encode_row
from signals_stream.engine.synced import SyncItem, apply_synced
from signals_stream.events.event import Event
from signals_stream.kafka.batches import BatchProducer, TopicBatches
from signals_stream.routing import EntityEvent, entity_row_key
from signals_stream.worker_state import WorkerState

__all__ = [
    "PendingRow",
    "PendingRows",
    "PendingSynced",
    "add_event",
    "write_backfill",
    "write_rows",
    "write_synced",
]

# (table partition, row key) -> warehouse values for that row, in arrival order
PendingSynced = dict[tuple[int, bytes], list[SyncItem]]


class PendingRow(NamedTuple):
    """The events of one entity row in this batch, and the table partition it lives in."""

    partition: int
    key_name: str
    entity_id: bytes
    events: list[SourcedEvent]


PendingRows = dict[bytes, PendingRow]  # by row key


def add_event(
    pending: PendingRows, item: EntityEvent, partition: int, backfills: tuple[str, ...] = ()
) -> None:
    """Queue one entity event for its row in table ``partition`` (``backfills``: the ids its
    routing plan knew, ``engine.backfill``)."""
    row_key = entity_row_key(item.key_name, item.entity_id)
    sourced = SourcedEvent(item.partition, item.offset, item.projection, backfills)
    entry = pending.get(row_key)
    if entry is None:
        pending[row_key] = PendingRow(partition, item.key_name, item.entity_id, [sourced])
    else:
        entry.events.append(sourced)


async def write_rows(state: WorkerState, pending: PendingRows) -> None:
    """Step every queued row and write it once; send what its rules fired.

    A row whose update fired is written only once the broker has acknowledged its
    interventions. The row records the firing (latch and offsets), and RocksDB survives a
    SIGKILL while the producer's buffer does not: written first, a crash could keep the row and
    lose the intervention. This way a crash loses the row update instead; the replay rebuilds
    it and fires again with the same id (at least once).
    """
    catalog = state.live.catalog
    rows = state.rows
    stats = state.stats
    interventions_topic = state.settings.interventions_topic
    dedupe_ids = state.settings.dedupe_event_ids
    now_ms = int(time.time() * 1000)
    fired_rows: list[tuple[int, bytes, bytes]] = []
    decoded: dict[bytes, Event] = {}  # each projection decoded once for all its keys' rows
    turns = LoopTurns()  # reads get a turn every few ms of a long batch
    # by partition, one record batch each (``kafka/batches.py``)
    interventions = TopicBatches(cast(BatchProducer, state.app.producer), interventions_topic)
    for row_key, (partition, key_name, entity_id, events) in pending.items():
        await turns.give()
        update = step_row(
            rows.get(partition, row_key),
            catalog,
            key_name,
            entity_id,
            events,
            now_ms,
            dedupe_ids=dedupe_ids,
            decoded=decoded,
        )
        if update.instances:
            for instance in update.instances:
                target = instance["target_attribute_key"]["id"].encode()
                await interventions.add_keyed(target, orjson.dumps(instance))
            fired_rows.append((partition, row_key, update.row))
        else:
            await rows.put(partition, row_key, update.row)
        stats.replays_skipped += update.replays
        stats.duplicates_dropped += update.duplicates
        stats.applied += update.applied
        stats.interventions += len(update.instances)
    if fired_rows:
        sent = await interventions.send()
        await asyncio.gather(*(batch.future for batch in sent))  # a failure: rows unwritten
        for partition, row_key, value in fired_rows:
            await rows.put(partition, row_key, value)
    stats.rows_written += len(pending)
    await rows.finish_batch()


async def write_backfill(state: WorkerState, backfill_id: str, pending: PendingRows) -> None:
    """Fold a batch's backfill-road events into their rows' backfilled slots
    (``engine.backfill.apply_backfill``), after the batch's live events. A backfill the
    catalog no longer has (unpublished, cancelled) is dropped."""
    backfill = state.live.catalog.backfills.get(backfill_id)
    if backfill is None or backfill_id in state.backfills.cancelled:
        state.stats.backfill_dropped += sum(len(p.events) for p in pending.values())
        return
    rows = state.rows
    now_ms = int(time.time() * 1000)
    for row_key, (partition, _key, _id, events) in pending.items():
        row = decode_row(rows.get(partition, row_key))
        done = apply_backfill(
            row,
            backfill,
            [(e.partition, e.offset, Event.from_projection(e.projection)) for e in events],
            now_ms,
        )
        state.stats.backfill_applied += done.applied
        state.stats.backfill_replays += done.replays
        state.stats.backfill_live += done.live
        await rows.put(partition, row_key, encode_row(row))
    if pending:
        await rows.finish_batch()


_YIELD_EVERY_ROWS = 500


async def write_synced(state: WorkerState, pending: PendingSynced) -> None:
    """Write a batch's warehouse values (sync records) into their entity rows, after the
    batch's events (``write_rows``): same rows, same changelog, same Redis copy."""
    rows = state.rows
    now_ms = int(time.time() * 1000)
    for done, ((partition, row_key), items) in enumerate(pending.items(), 1):
        row = decode_row(rows.get(partition, row_key))
        if apply_synced(row, items, now_ms):
            state.stats.synced_applied += len(items)
            await rows.put(partition, row_key, encode_row(row))
        if done % _YIELD_EVERY_ROWS == 0:  # a sync batch can hold 10^5 rows: let reads in
            await asyncio.sleep(0)
    if pending:
        await rows.finish_batch()
