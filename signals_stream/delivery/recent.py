"""The interventions of the last few minutes, by target, so a reconnecting stream misses none.

Every worker's interventions tail reads the topic's last ``SIGNALS_SSE_RESUME_LOOKBACK_S`` at
start and keeps every record it reads from then on here, bounded by that age (the record's
timestamp) and by ``SIGNALS_SSE_RESUME_MAX_ENTRIES`` (oldest dropped first). A stream that comes
back with a position (``delivery/resume.py``) is first sent what it missed from here: held in
memory, a thousand browsers reconnecting after a worker restart cost no read of Kafka each.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Mapping
from typing import NamedTuple

__all__ = ["Missed", "RecentInterventions", "Recorded"]

Target = tuple[str, str]


class Recorded(NamedTuple):
    """One record of the interventions topic, as read: its place, timestamp and JSON."""

    partition: int
    offset: int
    timestamp_ms: int
    value: bytes


class Missed(NamedTuple):
    records: list[Recorded]  # offset order within a partition, merged by timestamp across
    complete: bool  # False: some of what the stream missed was older than what is held


class RecentInterventions:
    def __init__(self, *, lookback_ms: int, max_entries: int) -> None:
        self.lookback_ms = lookback_ms
        self.max_entries = max_entries
        self._by_target: dict[Target, deque[Recorded]] = {}
        self._order: deque[tuple[int, Target]] = deque()
        # Per partition, the offset from which every record is held (or was never ours to hold).
        self._complete_from: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._order)

    def start(self, complete_from: Mapping[int, int]) -> None:
        """Where the tail starts reading: nothing before these offsets is held."""
        self._complete_from.update(complete_from)

    def add(self, target: Target, record: Recorded, now_ms: int) -> None:
        if record.timestamp_ms < now_ms - self.lookback_ms or self.max_entries == 0:
            self._forget(record)
            return
        self._by_target.setdefault(target, deque()).append(record)
        self._order.append((record.timestamp_ms, target))
        cutoff = now_ms - self.lookback_ms
        while self._order and (len(self._order) > self.max_entries or self._order[0][0] < cutoff):
            _, oldest_target = self._order.popleft()
            held = self._by_target[oldest_target]
            self._forget(held.popleft())
            if not held:
                del self._by_target[oldest_target]

    def missed(
        self,
        targets: Iterable[Target],
        since: Mapping[int, int],
        until: Mapping[int, int],
    ) -> Missed:
        """The records of ``targets`` a stream has not been shown: in each partition of
        ``since``, from that offset up to ``until`` (where the live stream takes over)."""
        by_partition: dict[int, list[Recorded]] = {}
        for target in targets:
            for record in self._by_target.get(target, ()):
                end = until.get(record.partition, 0)
                if since.get(record.partition, end) <= record.offset < end:
                    by_partition.setdefault(record.partition, []).append(record)
        for held in by_partition.values():
            held.sort(key=lambda r: r.offset)
        # Offset order within a partition (a position only moves forward), time across them.
        records = list(heapq.merge(*by_partition.values(), key=lambda r: r.timestamp_ms))
        complete = all(
            offset >= self._complete_from.get(partition, offset)
            for partition, offset in since.items()
        )
        return Missed(records, complete and self.lookback_ms > 0)

    def _forget(self, record: Recorded) -> None:
        if record.offset + 1 > self._complete_from.get(record.partition, 0):
            self._complete_from[record.partition] = record.offset + 1
