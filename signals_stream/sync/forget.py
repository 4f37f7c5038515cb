"""Deleting one entity's synced warehouse values (for user deletion)."""

from __future__ import annotations

from signals_stream.engine.synced import SyncItem, encode_sync_records
from signals_stream.kafka.partitioning import entity_partition
from signals_stream.sync.run import MAX_RECORD_BYTES
from signals_stream.worker_state import WorkerState

__all__ = ["forget_synced"]


async def forget_synced(state: WorkerState, key_name: str, entity_id: str) -> None:
    """Remove every synced value of entity ``key_name``/``entity_id`` from its row (RocksDB,
    changelog, Redis), on whichever worker owns it: a deletion record through the
    entity-events topic, applied in order with the entity's other updates. Returns once the
    broker acknowledged it. The warehouse row must be deleted too, or a later change to it
    syncs it again."""
    raw_id = entity_id.encode()
    (record,) = encode_sync_records([SyncItem(key_name, raw_id, None, 0, None)], MAX_RECORD_BYTES)
    partition = entity_partition(raw_id, state.settings.partitions)
    sent = await state.app.producer.send(
        state.topics.entity_events_name, None, record, partition, None, None
    )
    await sent
