"""The Redis profiles store on a worker (glue): drain the row mirror, and follow which entity
partitions this worker owns so their rows are copied again after a start or a rebalance.

Nothing here runs without ``SIGNALS_REDIS_URL``. See ``signals_stream/profiles/mirror.py``.
"""

from __future__ import annotations

import itertools
from typing import Any

from faust.types import TP
from mode.types.signals import BaseSignalT

from signals_stream.profiles import RowMirror
from signals_stream.worker_state import WorkerState

__all__ = ["TableSource", "register_profiles_mirror"]


class TableSource:
    """The entity-rows table, partition by partition, for resyncs (``profiles.RowSource``)."""

    def __init__(self, state: WorkerState) -> None:
        self._state = state

    def ready(self) -> bool:
        # Only between rebalances: while one runs, a partition's rows may be half recovered.
        app = self._state.app
        return not app.rebalancing and self._state.tables_recovered()

    def owned(self) -> set[int]:
        return self._state.entity_partitions() if self.ready() else set()

    def rows_after(
        self, partition: int, after: bytes | None, limit: int
    ) -> list[tuple[bytes, bytes]] | None:
        if partition not in self._state.entity_partitions():
            return None
        # Read without an await, so a revocation cannot close the database under the iterator.
        return list(itertools.islice(self._state.rows.scan(partition, after), limit))


def register_profiles_mirror(state: WorkerState, mirror: RowMirror) -> None:
    """The mirror's drain task, and the rebalance hooks that ask for resyncs."""
    app = state.app
    source = TableSource(state)
    known: set[int] = set()
    entity_events = state.topics.entity_events_name

    async def mirror_rows() -> None:
        """The mirror's drain loop, for the worker's lifetime."""
        await mirror.run(source)

    async def revoked(sender: Any, *args: Any, signal: BaseSignalT[Any], **kwargs: Any) -> None:
        revoked: set[TP] = args[0] if args else kwargs["revoked"]  # sent positionally
        gone = {tp.partition for tp in revoked if tp.topic == entity_events}
        mirror.forget(gone)
        known.difference_update(gone)

    async def rebalanced(sender: Any, *args: Any, signal: BaseSignalT[Any], **kwargs: Any) -> None:
        # Sent once the tables are recovered, before the streams resume.
        owned = state.entity_partitions()
        mirror.forget(known - owned)
        # Partitions new to this worker: the previous owner's copy may lack its last rows.
        mirror.request_resync(owned - known)
        known.clear()
        known.update(owned)

    app.task(mirror_rows)
    app.on_partitions_revoked.connect(revoked)  # type: ignore[arg-type]  # mode types it too narrowly
    app.on_rebalance_complete.connect(rebalanced)  # type: ignore[arg-type]
