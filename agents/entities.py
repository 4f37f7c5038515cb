"""Entity agent: folds re-keyed events into entity rows, exactly once in effect, and sweeps
expired rows."""

from __future__ import annotations

import logging
import time
from typing import cast

from faust import Stream
from faust.types import TP, Message, StreamT

from agents.entity_offsets import Admission, OffsetSequence
from agents.rows import (
    PendingRows,
    PendingSynced,
    add_event,
    write_backfill,
    write_rows,
    write_synced,
)
from agents.sweep import Sweeper
from agents.warehouse_backfill import (
    PendingStates,
    add_warehouse_states,
    write_warehouse_states,
)
from signals_stream.engine.synced import decode_sync_record
from signals_stream.ops.stats import IngestStats
from signals_stream.routing import decode_entity_events, entity_row_key
from signals_stream.routing.backfill_headers import backfill_of, routed_for
from signals_stream.routing.deletions import Deletion, decode_deletion, is_deletion
from signals_stream.worker_state import WorkerState

__all__ = ["register_entities"]

logger = logging.getLogger(__name__)

_SWEEP_STEP_EVERY_S = 1.0  # one bounded slice per partition per second at most
# A sync record holds ~2,000 rows: a batch's decoded warehouse rows are written once they
# reach this many, so a sync of millions of rows never sits decoded in memory at once.
_SYNCED_FLUSH_ROWS = 20_000


def _add_synced(synced: PendingSynced, raw: bytes, partition: int, stats: IngestStats) -> bool:
    """Queue a sync record's warehouse values by row; False when ``raw`` is not one."""
    try:
        items = decode_sync_record(raw)
    except ValueError as exc:  # counted and logged, never stops the stream
        stats.sync_bad_records += 1
        logger.error("sync record in partition %d skipped: %s", partition, exc)
        return True
    if items is None:
        return False
    for item in items:
        row_key = entity_row_key(item.key_name, item.entity_id)
        synced.setdefault((partition, row_key), []).append(item)
    return True


def register_entities(state: WorkerState) -> None:
    """The ``entities`` agent on the entity-events topic, and the timer that keeps idle
    partitions swept."""
    app, settings, stats = state.app, state.settings, state.stats
    sweeper = Sweeper(state)
    last_sweep: dict[int, float] = {}
    entity_events = state.topics.entity_events

    def committed(partition: int) -> int | None:
        known = getattr(app.consumer, "committed_offset", None)  # our transport's consumer
        tp = TP(state.topics.entity_events_name, partition)
        return None if known is None else cast("int | None", known(tp))

    sequence = OffsetSequence(committed)

    async def entities(stream: StreamT[bytes]) -> None:
        """Per batch: one read and at most one write per entity row (``agents.rows``), then a
        bounded sweep slice of each partition the batch came from."""
        await state.registry_log.ready.wait()  # the whole catalog, from the first event
        # ``take_events`` is the concrete stream's (Faust's StreamT lacks it)
        async for batch in cast(Stream[bytes], stream).take_events(
            settings.agent_batch_size, within=settings.agent_batch_within_ms / 1000
        ):
            stats.entity_batches += 1
            pending: PendingRows = {}
            synced: PendingSynced = {}
            backfills: dict[str, PendingRows] = {}  # the backfill road's, by backfill id
            warehouse_states: PendingStates = {}  # warehouse parts of backfills
            partitions: set[int] = set()
            # (the ingest stage's send time, events): one latency observation per record
            sent: list[tuple[float, int]] = []
            generation = app.consumer_generation_id
            for record in batch:
                partition = record.message.partition
                if sequence.admit(generation, partition, record.message.offset) is Admission.HOLD:
                    await _hold(state, sequence, record.message)
                    continue
                partitions.add(partition)
                if is_deletion(record.message.headers):
                    # What came before the marker first, then the row goes.
                    await write_rows(state, pending)
                    await write_synced(state, synced)
                    await write_warehouse_states(state, warehouse_states)
                    await _write_backfills(state, backfills)
                    pending, synced, backfills, warehouse_states = {}, {}, {}, {}
                    await delete_row(state, partition, decode_deletion(record.message.value or b""))
                    continue
                raw = record.message.value or b""
                if add_warehouse_states(warehouse_states, raw, partition, state):
                    continue
                if _add_synced(synced, raw, partition, stats):
                    if len(synced) >= _SYNCED_FLUSH_ROWS:  # the batch's events first, as below
                        await write_rows(state, pending)
                        await write_synced(state, synced)
                        pending, synced = {}, {}
                    continue
                items = decode_entity_events(record.message.value or b"")
                headers = record.message.headers
                backfill = backfill_of(headers)
                if backfill is not None:
                    road = backfills.setdefault(backfill, {})
                    for item in items:
                        add_event(road, item, partition)
                    stats.backfill_received += len(items)
                    continue
                flags = routed_for(headers)
                for item in items:
                    add_event(pending, item, partition, flags)
                if items:
                    stats.entity_events_received += len(items)
                    if record.message.timestamp:  # the producer's create time, in seconds
                        sent.append((record.message.timestamp, len(items)))
            await write_rows(state, pending)
            await write_synced(state, synced)
            # before the log's road: its events were sent after them (a TTL is judged in order)
            await write_warehouse_states(state, warehouse_states)
            await _write_backfills(state, backfills)
            visible = time.time()
            for sent_at, count in sent:
                state.processed_to_visible.observe(visible - sent_at, count)
            now = time.monotonic()
            for partition in partitions:
                if now - last_sweep.get(partition, 0.0) >= _SWEEP_STEP_EVERY_S:
                    last_sweep[partition] = now
                    await sweeper.step(partition)

    async def tick_owned_partitions() -> None:
        """An empty record to each entity partition this worker owns, so idle ones are swept."""
        name = state.topics.entity_events_name
        for partition in state.entity_partitions():
            await app.producer.send(name, None, b"", partition, None, None)

    app.agent(entity_events, name="entities", concurrency=1)(entities)
    app.timer(interval=settings.sweep_interval_s)(tick_owned_partitions)


async def _write_backfills(state: WorkerState, backfills: dict[str, PendingRows]) -> None:
    for backfill_id, rows in backfills.items():
        await write_backfill(state, backfill_id, rows)


async def _hold(state: WorkerState, sequence: OffsetSequence, message: Message) -> None:
    """A record past a hole: neither applied nor acknowledged; the partition is sought back to
    the hole once (``agents/entity_offsets.py``)."""
    state.stats.entity_records_held += 1
    consumer = state.app.consumer
    forget = getattr(consumer, "forget", None)
    if forget is not None:
        forget(message)
    target = sequence.seek_to(message.partition)
    if target is None:
        return
    logger.warning(
        "entity-events partition %d: record %d came before %d: seeking back to %d",
        message.partition, message.offset, target, target,
    )  # fmt: skip
    await consumer.seek(message.tp, target)


async def delete_row(state: WorkerState, partition: int, deletion: Deletion) -> None:
    """Apply a deletion marker: the row goes, with a changelog tombstone and its Redis copy."""
    found = state.rows.get(partition, deletion.row_key) is not None
    if found:
        await state.rows.delete(partition, deletion.row_key)
        await state.rows.finish_batch()
        state.stats.rows_deleted += 1
    state.deletions.applied(deletion.request_id, found)
