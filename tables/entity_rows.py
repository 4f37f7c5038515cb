"""The entity-state table: one row per entity (see ``signals_stream.engine.row``), in RocksDB.

Written only by the ``entities`` agent, which consumes the entity-events topic, so the table is
co-partitioned with that topic and a row lives in the partition its entity id hashes to.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

from aiokafka.structs import RecordMetadata
from faust.types import TP, EventT

from signals_stream.app import app, settings
from signals_stream.profiles.worker import worker_mirror

__all__ = ["ENTITY_STATE_TABLE", "RowWriter", "entity_state", "mirror"]

ENTITY_STATE_TABLE = "entity-state"
MIB = 1024 * 1024

entity_state = app.Table(
    ENTITY_STATE_TABLE,
    key_type=bytes,
    value_type=bytes,
    partitions=settings.partitions,
    # Faust's defaults open a 2 GiB block cache and 3 x 64 MiB memtables per partition.
    options={
        "block_cache_size": settings.rocksdb_block_cache_mb * MIB,
        "write_buffer_size": settings.rocksdb_write_buffer_mb * MIB,
        "max_write_buffer_number": 2,
        "target_file_size_base": 16 * MIB,
    },
    help="Per-entity state rows: attribute states and the last applied source offsets.",
)

# The Redis profiles store (SIGNALS_REDIS_URL): every row written here and every row swept is
# queued for it (a dict assignment); tables/profiles.py drains the queue in the background.
mirror = worker_mirror(settings)


class RowWriter:
    """Write entity rows with one RocksDB put and one changelog send each.

    ``table[key] = value`` costs about half a millisecond per write in Faust (a future message
    through the producer buffer, sensors, and a RocksDB put of the changelog offset on every
    acknowledgement), more than the whole engine step. This writes the same two things
    directly: the row into the partition's database (Faust's store, so reads, recovery and
    routing are unchanged) and a raw record into the table's changelog partition. The
    changelog offset is persisted once per partition per batch, from the acknowledgement of the
    batch's last record. Faust flushes the producer before committing input offsets, so the
    changelog never lags a commit.
    """

    def __init__(self) -> None:
        self._topic = entity_state.changelog_topic.get_topic_name()
        self._last: dict[int, asyncio.Future[RecordMetadata]] = {}

    def get(self, row_key: bytes, record: EventT) -> bytes | None:
        """The row under ``row_key`` in the partition of ``record``, if any.

        Straight from the partition's database: ``Table.get`` adds a sensor call, a key-index
        update, a raised ``KeyError`` for a new row and two context switches per read.
        """
        return _partition_db(record.message.partition).get(row_key)

    async def put(self, row_key: bytes, value: bytes, record: EventT) -> None:
        """Store ``value`` under ``row_key`` in the partition of ``record``."""
        partition = record.message.partition
        _partition_db(partition).put(row_key, value)
        self._last[partition] = await app.producer.send(
            self._topic, row_key, value, partition, None, None
        )
        if mirror is not None:
            mirror.put(row_key, value, partition)

    def finish_batch(self) -> None:
        """Persist each partition's changelog offset once its last record is acknowledged."""
        for partition, future in self._last.items():
            future.add_done_callback(partial(self._persist, partition))
        self._last = {}

    def _persist(self, partition: int, future: asyncio.Future[RecordMetadata]) -> None:
        if future.cancelled() or future.exception() is not None:
            return  # the send failed: Faust's producer flush fails the commit, nothing lost
        store = entity_state.data
        offset = future.result().offset
        # Only while this worker still owns the partition (a rebalance may have moved it).
        if partition in getattr(store, "_dbs", {}):
            store.set_persisted_offset(TP(self._topic, partition), offset)


def _partition_db(partition: int) -> Any:
    """The RocksDB database of one table partition (Faust's store opens it on first use).

    Reads without a current event (the API's) find rows through Faust's key index or, for
    rows written here, by asking each partition's database (bloom filters make that cheap).
    """
    return entity_state.data._db_for_partition(partition)  # noqa: SLF001 - see RowWriter
