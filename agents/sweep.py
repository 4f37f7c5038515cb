"""Sweep expired entity rows: tombstones written from the stream, a bounded slice at a time.

The entities agent calls :meth:`Sweeper.step` for every partition a batch touched, and a timer
(``agents/entities.py``) sends an empty record to each owned partition so that idle partitions
are swept too. Each step examines at most ``budget`` rows, resuming where the previous step
stopped, so a sweep never stalls the stream.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from signals_stream.engine import row_expired
from signals_stream.engine.row import decode_row
from signals_stream.errors import StateError
from signals_stream.routing import split_row_key
from signals_stream.worker_state import WorkerState

__all__ = ["Sweeper"]

logger = logging.getLogger(__name__)


class Sweeper:
    """Walks each partition's rows in slices and deletes the expired ones."""

    def __init__(self, state: WorkerState, budget: int = 200) -> None:
        self._state = state
        self.budget = budget
        self._cursors: dict[int, Iterator[tuple[bytes, bytes]]] = {}

    async def step(self, partition: int) -> None:
        """Examine up to ``budget`` rows of ``partition`` and delete the expired ones."""
        state = self._state
        cursor = self._cursors.get(partition)
        if cursor is None:
            cursor = self._cursors[partition] = state.rows.scan(partition)
        catalog = state.live.catalog
        now_ms = int(time.time() * 1000)
        expired_keys = []
        for _ in range(self.budget):
            item = next(cursor, None)
            if item is None:
                del self._cursors[partition]  # a new pass starts at the next step
                break
            row_key, raw = item
            try:
                row = decode_row(raw)
            except StateError:
                logger.error("undecodable entity row %r left in place", row_key)
                continue
            key_name, _ = split_row_key(row_key)
            if row_expired(row, catalog.programs.get(key_name), now_ms, catalog.synced_ttls):
                expired_keys.append(row_key)
        for row_key in expired_keys:
            await state.rows.delete(partition, row_key)
        if expired_keys:
            await state.rows.finish_batch()
            state.rows_swept += len(expired_keys)
