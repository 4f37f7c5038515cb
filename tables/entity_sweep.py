"""Sweep expired entity rows: tombstones written from the stream, a bounded slice at a time.

Faust tables can only be written in the context of a record of the row's partition, so the
entities agent calls :meth:`Sweeper.step` for every partition a batch touched, and a timer
(``agents/entities.py``) sends an empty record to each owned partition so that idle partitions
are swept too. Each step examines at most ``budget`` rows, resuming where the previous step
stopped, so a sweep never stalls the stream.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from faust.types import EventT

from signals_stream.engine import row_expired
from signals_stream.engine.installed import current_catalog
from signals_stream.engine.row import StateError, decode_row
from signals_stream.routing.rekey import split_row_key
from tables.current_event import as_current_event
from tables.entity_rows import entity_state, mirror

__all__ = ["Sweeper"]

logger = logging.getLogger(__name__)


class Sweeper:
    """Walks each partition's rows in slices and deletes the expired ones."""

    def __init__(self, budget: int = 200) -> None:
        self.budget = budget
        self.deleted = 0
        self._cursors: dict[int, Iterator[tuple[bytes, bytes]]] = {}

    def step(self, partition: int, record: EventT) -> None:
        """Examine up to ``budget`` rows of ``partition``; ``record`` is a record of it."""
        cursor = self._cursors.get(partition)
        if cursor is None:
            cursor = self._cursors[partition] = self._rows(partition)
        catalog = current_catalog()
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
            if row_expired(row, catalog.programs.get(key_name), now_ms):
                expired_keys.append(row_key)
        if expired_keys:
            with as_current_event(record):
                for row_key in expired_keys:
                    del entity_state[row_key]
                    if mirror is not None:
                        mirror.delete(row_key, partition)
            self.deleted += len(expired_keys)

    @staticmethod
    def _rows(partition: int) -> Iterator[tuple[bytes, bytes]]:
        # Faust exposes no per-partition iteration; its RocksDB store keeps one database per
        # partition in ``_dbs`` (a snapshot iterator, so deleting while walking is safe).
        store = entity_state.data
        db = getattr(store, "_dbs", {}).get(partition)
        if db is None:
            return iter(())
        offset_key = getattr(store, "offset_key", None)
        return ((k, v) for k, v in db.items() if k != offset_key)
