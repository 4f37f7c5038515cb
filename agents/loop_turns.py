"""Long synchronous steps give the event loop a turn every couple of milliseconds.

The entity stage folds a whole batch (up to ``SIGNALS_AGENT_BATCH_SIZE`` records, two or more
rows each) and the lean ingest parses a whole poll (up to ``SIGNALS_BROKER_MAX_POLL_RECORDS``)
without awaiting anything that yields: at half a worker's rate that held the loop for tens
of milliseconds at a time, and every HTTP read arriving meanwhile waited for the whole slice
(issue #13: 1-id reads p99 39 ms from the owning worker). A read is a few loop turns of well
under a millisecond each, so a turn every ``SLICE_S`` bounds its wait by a few slices,
whatever the batch size; the batch costs one clock read per row and a turn per slice.
"""

from __future__ import annotations

import asyncio
import time

__all__ = ["SLICE_S", "LoopTurns"]

SLICE_S = 0.002


class LoopTurns:
    """Call :meth:`give` between the items of a long step: it yields once ``SLICE_S`` has
    passed since the last turn it gave."""

    __slots__ = ("_since",)

    def __init__(self) -> None:
        self._since = time.perf_counter()

    async def give(self) -> None:
        if time.perf_counter() - self._since >= SLICE_S:
            await asyncio.sleep(0)
            self._since = time.perf_counter()
