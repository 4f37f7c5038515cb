"""The Redis profiles store on a worker (glue): drain the row mirror, and follow which entity
partitions this worker owns so their rows are copied again after a start or a rebalance.

Nothing here runs without ``SIGNALS_REDIS_URL``. See ``signals_stream/profiles/mirror.py``.
"""

from __future__ import annotations

from typing import Any

from faust.types import TP

from signals_stream.app import ENTITY_EVENTS_TOPIC, app
from signals_stream.profiles import RowSource
from tables.entity_rows import entity_state, mirror

__all__ = ["TableSource"]


class TableSource:
    """The entity-state table's rows, partition by partition, for resyncs."""

    def ready(self) -> bool:
        # Only between rebalances: while one runs, a partition's rows may be half recovered.
        return not app.rebalancing and app.tables.recovery.completed.is_set()

    def owned(self) -> set[int]:
        return assigned_partitions() if self.ready() else set()

    def rows_after(
        self, partition: int, after: bytes | None, limit: int
    ) -> list[tuple[bytes, bytes]] | None:
        if partition not in assigned_partitions():
            return None
        # Faust keeps one RocksDB per partition in ``_dbs`` (as the sweep uses); the chunk is
        # read without an await, so a revocation cannot close the database under the iterator.
        store = entity_state.data
        db = getattr(store, "_dbs", {}).get(partition)
        if db is None:
            return []  # nothing written to it yet
        offset_key = getattr(store, "offset_key", None)
        rows: list[tuple[bytes, bytes]] = []
        for key, value in db.items(from_key=after):
            if key == after or key == offset_key:
                continue
            rows.append((bytes(key), bytes(value)))
            if len(rows) >= limit:
                break
        return rows


def assigned_partitions() -> set[int]:
    return {tp.partition for tp in app.consumer.assignment() if tp.topic == ENTITY_EVENTS_TOPIC}


_source: RowSource = TableSource()
_known: set[int] = set()

if mirror is not None:
    _mirror = mirror

    @app.task
    async def mirror_rows() -> None:
        """The mirror's drain loop, for the worker's lifetime."""
        await _mirror.run(_source)

    @app.on_partitions_revoked.connect
    async def _revoked(sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        gone = {tp.partition for tp in revoked if tp.topic == ENTITY_EVENTS_TOPIC}
        _mirror.forget(gone)
        _known.difference_update(gone)

    @app.on_rebalance_complete.connect
    async def _rebalanced(sender: Any, **kwargs: Any) -> None:
        # Sent once the tables are recovered, before the streams resume.
        owned = assigned_partitions()
        _mirror.forget(_known - owned)
        # Partitions new to this worker: the previous owner's copy may lack its last rows.
        _mirror.request_resync(owned - _known)
        _known.clear()
        _known.update(owned)
