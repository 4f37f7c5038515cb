"""The entity-state table: one row per entity (see ``signals_stream.state``), in RocksDB.

Written only by the ``entities`` agent, which consumes the entity-events topic, so the table is
co-partitioned with that topic and a row lives in the partition its entity id hashes to.
"""

from __future__ import annotations

from signals_stream.app import app, settings

__all__ = ["ENTITY_STATE_TABLE", "entity_state"]

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
