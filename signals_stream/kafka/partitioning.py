"""Which partition an entity id belongs to: Kafka's default partitioner on the raw id bytes.

The hash Faust's router applies to table keys, the ingest stage to entity events and the
profiles store's readers to ids, so every one of them agrees on an entity's owner.
"""

from __future__ import annotations

from functools import lru_cache

from aiokafka.partitioner import murmur2

__all__ = ["entity_partition"]


@lru_cache(maxsize=200_000)
def entity_partition(entity_id: bytes, partitions: int) -> int:
    """The partition of ``entity_id`` among ``partitions``. Cached: ids repeat, and aiokafka's
    murmur2 is pure Python."""
    return (murmur2(entity_id) & 0x7FFFFFFF) % partitions
