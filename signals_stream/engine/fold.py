"""Apply events to an entity row: every slot of the key's program that accepts the event."""

from __future__ import annotations

from collections.abc import Iterable

from signals_stream.engine.catalog import KeyProgram
from signals_stream.engine.row import EntityRow
from signals_stream.engine.windows import expired
from signals_stream.events.parse import Event

__all__ = ["FUTURE_TOLERANCE_MS", "fold_events", "prune_row"]

# A rolling window is pruned relative to its newest bucket, so one event stamped far in the
# future would wipe it. derived_tstamp already corrects device clocks; beyond this margin an
# event is kept out of rolling windows (lifetime aggregations still see it).
FUTURE_TOLERANCE_MS = 5 * 60 * 1000


def fold_events(
    row: EntityRow,
    program: KeyProgram,
    events: Iterable[Event],
    now_ms: int,
    *,
    on_event_time: bool = False,
) -> set[str]:
    """Fold ``events`` into ``row`` in place.

    A slot whose value outlived its retention starts again from an empty state (the old value
    would read as expired anyway). Events are placed by their own event time, so their order
    within the batch does not matter. A slot's update time (what TTLs count from) only moves
    forward.

    Args:
        now_ms: the clock the fold is judged at (the wall clock on the live road).
        on_event_time: judge each event at its *own* event time instead (the backfill road):
            retention and the update time are those of a stream that folded the event when it
            happened; ``now_ms`` then only bounds events from the future.

    Returns:
        The ids of the slots that changed.
    """
    changed: set[str] = set()
    attrs = row.attrs
    marks = row.backfills
    horizon_ms = now_ms + FUTURE_TOLERANCE_MS
    steps = program.steps
    at_ms = now_ms
    for event in events:
        event_time_ms = event.event_time_ms
        event_id = event.event_id
        from_future = event_time_ms > horizon_ms
        if on_event_time:
            at_ms = min(event_time_ms, horizon_ms)
        # One specialised step per slot the event's identity selects (``KeyProgram.steps``).
        for (sid, windowed, select, criteria, get, skips_none, add, initial, retention_ms,
             since_ms, backfill) in steps(event):  # fmt: skip
            if from_future and windowed:
                continue
            if select is not None and not select(event):
                continue
            if criteria is not None and not criteria(event):
                continue
            value = None if get is None else get(event)
            if value is None and skips_none:
                continue
            entry = attrs.get(sid)
            updated_ms = at_ms
            if (
                entry is None
                or (retention_ms is not None and at_ms - entry[1] >= retention_ms)
                # Written before this publication (``Slot.stale``, inlined).
                or (entry[1] < since_ms and (backfill is None or backfill not in marks))
            ):
                state = initial()
            else:
                state = entry[0]
                if entry[1] > at_ms:  # folded earlier at a later time (the other road)
                    updated_ms = entry[1]
            attrs[sid] = [add(state, value, event_time_ms, event_id), updated_ms]
            changed.add(sid)
    return changed


def prune_row(row: EntityRow, program: KeyProgram | None, now_ms: int) -> bool:
    """Reclaim storage: drop slots no published definition reads, slots past retention and
    slots left from an earlier publication.

    Returns:
        True when something was dropped.
    """
    live = {} if program is None else program.slot_by_id()
    dead = [
        sid
        for sid, (_, updated_ms) in row.attrs.items()
        if sid not in live
        or expired(updated_ms, live[sid].retention_ms, now_ms)
        or live[sid].stale(updated_ms, row.backfills)
    ]
    for sid in dead:
        del row.attrs[sid]
    return bool(dead)
