"""Read-only copies of entity partitions that a worker serves before its group join completes.

Each is the partition's RocksDB database as the previous run left it, opened read-only (no
lock: Faust's store opens the same database read-write when the partition is assigned). A
partition is dropped the moment its changelog shows a write by anyone (``agents.early_serving``)
and all of them once the first rebalance completes: from then on the assignment decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

__all__ = ["LocalCopies"]


class _ReadOnlyDB(Protocol):
    def get(self, key: bytes) -> bytes | None: ...

    def close(self) -> None: ...


class LocalCopies:
    """Partition -> its read-only database, with the changelog offset it was verified at."""

    def __init__(self, dbs: Mapping[int, _ReadOnlyDB], last_offsets: Mapping[int, int]) -> None:
        self._copies = dict(dbs)
        self.last_offsets = {p: last_offsets[p] for p in self._copies}

    def __contains__(self, partition: object) -> bool:
        return partition in self._copies

    @property
    def partitions(self) -> frozenset[int]:
        return frozenset(self._copies)

    def get(self, partition: int, row_key: bytes) -> bytes | None:
        value = self._copies[partition].get(row_key)
        return None if value is None else bytes(value)

    def drop(self, partition: int) -> None:
        db = self._copies.pop(partition, None)
        self.last_offsets.pop(partition, None)
        if db is not None:
            db.close()

    def close(self) -> None:
        for partition in list(self._copies):
            self.drop(partition)
