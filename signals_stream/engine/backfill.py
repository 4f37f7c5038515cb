"""Backfill: a newly published group's state filled from the input log, exactly once (pure).

A group published with ``backfill_since_tstamp`` gets a ``catalog.Backfill`` in the catalog for
the slots it is the first reader of (a slot shared with an earlier publication already has
that one's history). Two roads then feed those slots, and each event of an entity must come
down exactly one of them:

- **live**: the ingest stage routes with the new catalog from some offset ``s`` of each input
  partition on, and flags those entity-events records with the backfill ids its plan knew
  (an event routed before, with the old plan, may lack fields the new slots read);
- **backfill**: a task per input partition re-reads the log from ``since`` to an end ``E`` at
  least ``s`` and sends the events again, marked as the backfill's.

Both roads reach an entity's row in input order per partition, so the row decides, per input
partition, with two numbers kept in the same changelog record as the state
(``row.backfills[id][partition]``):

- ``b``: the highest backfill offset processed (replays of the backfill road are skipped);
- ``l``: the lowest *live* offset folded into the backfilled slots.

A flagged live event is folded if ``l`` is set (every later live event is), or if it is past
``b`` (then ``l`` is set to it); at or below ``b`` with no ``l``, the backfill folded it. A
backfill event is folded if it is below ``l`` (or no ``l`` yet); at or past ``l`` the live road
has it or will have it. No wall clock is involved: the seam is an input offset per row and
partition, whatever the order the two roads arrive in.

**Event time.** The backfill road folds each event at its own event time
(``fold_events(on_event_time=True)``), as ``engine.history`` does for ``test()``: a slot's
update time (TTLs count from it), the retention reset between two events and the rolling
windows are those of a stream that folded the event when it happened. The live road folds
on the wall clock, as every live slot; a slot's update time only moves forward, so the two
roads' order does not matter. A row's slots take the backfill's state once its marks exist:
when either road first reaches a row, whatever the backfilled slots held (an earlier
publication's state) is dropped, and from then on the marks, not the update time, say the
state is this publication's (``Slot.stale``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from signals_stream.engine.catalog import Backfill
from signals_stream.engine.fold import fold_events
from signals_stream.engine.row import EntityRow
from signals_stream.events.event import Event

__all__ = ["BackfillApplied", "admit_live", "apply_backfill"]


class BackfillApplied(NamedTuple):
    applied: int  # folded into the backfilled slots
    replays: int  # at or below ``b``: the backfill road sent them before
    live: int  # at or past ``l``: the live road has them


def _marks(row: EntityRow, backfill: Backfill, partition: int) -> dict[str, int]:
    found = row.backfills.get(backfill.id)
    if found is None:  # the first event of this backfill for the row: earlier state is stale
        for slot_id in backfill.slot_ids:
            row.attrs.pop(slot_id, None)
        found = row.backfills[backfill.id] = {}
    return found.setdefault(str(partition), {})


def admit_live(
    row: EntityRow, backfill: Backfill, events: Sequence[tuple[int, int, Event]]
) -> list[Event]:
    """Of an entity's flagged live ``(input partition, offset, event)`` s (replays already
    dropped), those the backfilled slots take; records ``l``."""
    taken: list[Event] = []
    for partition, offset, event in events:
        marks = _marks(row, backfill, partition)
        if "l" not in marks:
            if offset <= marks.get("b", -1):
                continue  # the backfill road folded it
            marks["l"] = offset
        taken.append(event)
    return taken


def apply_backfill(
    row: EntityRow,
    backfill: Backfill,
    events: Sequence[tuple[int, int, Event]],
    now_ms: int,
) -> BackfillApplied:
    """Fold the backfill road's ``(input partition, offset, event)`` s of one entity (in input
    order per partition) into its backfilled slots, each at its own event time, skipping
    replays and what the live road has (``now_ms``, the wall clock, bounds future events)."""
    taken: list[Event] = []
    replays = live = 0
    for partition, offset, event in events:
        marks = _marks(row, backfill, partition)
        if offset <= marks.get("b", -1):
            replays += 1
            continue
        marks["b"] = offset
        if offset >= marks.get("l", offset + 1):
            live += 1
            continue
        taken.append(event)
    if taken:
        fold_events(row, backfill.program, taken, now_ms, on_event_time=True)
    return BackfillApplied(len(taken), replays, live)
