"""The entity-events records of a partition are applied in offset order, without holes.

Rows skip an event at or below their last applied input offset, so they are exact only if each
entity partition's records reach them in order. Faust can break that around a rebalance: its
recovery resumes a newly assigned partition's stream before it seeks the partition to its
committed offset, and records fetched in between (or left in its queues) keep arriving after
the seek. Seen on the embedded broker under load: a survivor applied records 0-157 of a moved
partition, the seek landed, record 158 never came and 159 onwards did, so 158's events were
lost for good (later replays of them sat below the rows' offsets).

:class:`OffsetSequence` keeps, per partition and consumer generation, the next offset to apply.
A partition's first record after an assignment is expected at its committed offset when the
consumer knows it. A record below the next offset is a replay (passed on: rows skip what they
applied); a record beyond it means records were skipped: it is held back (neither applied nor
acknowledged, so no commit passes it) and the partition is sought back to the missing offset
once, so the skipped records come again, in order. If the read after that seek still starts
past the hole (a held offset comes again), the records are gone (retention removed them
while the partition was not read): the partition goes on from there, with a warning. The
entity-events topic
is never compacted and never written transactionally, so its offsets have no holes of their own
(a partition's first record after an assignment sets the start: retention may have removed
older ones).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import Enum

__all__ = ["Admission", "OffsetSequence"]

logger = logging.getLogger(__name__)


class Admission(Enum):
    APPLY = "apply"  # the next record, or a replay of an applied one
    HOLD = "hold"  # beyond the next offset: not applied; seek back to ``OffsetSequence.next``


class OffsetSequence:
    """Per entity-events partition, the next offset the entity stage may apply."""

    def __init__(self, committed: Callable[[int], int | None] = lambda partition: None) -> None:
        """``committed``: a partition's committed offset (the next to read) when the consumer
        knows it; asked for a partition's first record after a rebalance only."""
        self._committed = committed
        self.rebased = 0  # times the records of a hole were found gone (see ``admit``)
        self._generation: int | None = None
        self._next: dict[int, int] = {}
        self._sought: dict[int, int] = {}  # the offset each partition was last sought back to
        self._held: dict[int, int] = {}  # the highest offset held since that seek

    def admit(self, generation: int, partition: int, offset: int) -> Admission:
        """Whether the record at ``offset`` of ``partition`` may be applied now."""
        if generation != self._generation:  # a rebalance: positions start again
            self._generation = generation
            self._next.clear()
            self._sought.clear()
            self._held.clear()
        expected = self._next.get(partition)
        if expected is None:
            expected = self._committed(partition)
        if expected is None or offset == expected:
            self._next[partition] = offset + 1
            return Admission.APPLY
        if offset < expected:
            return Admission.APPLY
        self._next.setdefault(partition, expected)
        if self._sought.get(partition) == expected and offset <= self._held.get(partition, -1):
            # The seek took effect and the partition still starts past ``expected``: the
            # missing records are gone (retention removed them while nobody read them).
            logger.warning(
                "entity-events partition %d: offsets %d-%d no longer exist; going on from %d",
                partition, expected, offset - 1, offset,
            )  # fmt: skip
            self._next[partition] = offset + 1
            self._held.pop(partition, None)
            self.rebased += 1
            return Admission.APPLY
        self._held[partition] = max(offset, self._held.get(partition, -1))
        return Admission.HOLD

    def next(self, partition: int) -> int | None:
        return self._next.get(partition)

    def seek_to(self, partition: int) -> int | None:
        """The offset to seek ``partition`` back to after a held record, once per missing
        offset (further held records wait for that seek to take effect)."""
        expected = self._next.get(partition)
        if expected is None or self._sought.get(partition) == expected:
            return None
        self._sought[partition] = expected
        return expected
