"""The entity-rows table: one row per entity (``engine.row``), in RocksDB with a changelog.

Written only by the ``entities`` agent, which consumes the entity-events topic, so the table is
co-partitioned with that topic and a row lives in the partition its entity id hashes to. Rows
are read and written through ``tables.row_store.RowStore``, never ``table[key]``.
"""

from __future__ import annotations

from faust.types import AppT, TableT

from signals_stream.settings import Settings

__all__ = ["ENTITY_ROWS_TABLE", "declare_entity_rows"]

ENTITY_ROWS_TABLE = "entity-state"  # the changelog topic's name derives from it: keep it
MIB = 1024 * 1024


def declare_entity_rows(app: AppT, settings: Settings) -> TableT:
    return app.Table(
        ENTITY_ROWS_TABLE,
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
