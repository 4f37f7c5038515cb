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
    row: EntityRow, program: KeyProgram, events: Iterable[Event], now_ms: int
) -> set[str]:
    """Fold ``events`` into ``row`` in place.

    A slot whose value outlived its retention starts again from an empty state (the old value
    would read as expired anyway). Events are placed by their own event time, so their order
    within the batch does not matter.

    Returns:
        The ids of the slots that changed.
    """
    changed: set[str] = set()
    attrs = row.attrs
    horizon_ms = now_ms + FUTURE_TOLERANCE_MS
    steps = program.steps
    for event in events:
        event_time_ms = event.event_time_ms
        event_id = event.event_id
        from_future = event_time_ms > horizon_ms
        # One specialised step per slot the event's identity selects (``KeyProgram.steps``).
        for (sid, windowed, select, criteria, get, skips_none, add, initial, retention_ms,
             since_ms) in steps(event):  # fmt: skip
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
            if (
                entry is None
                or (retention_ms is not None and now_ms - entry[1] >= retention_ms)
                or entry[1] < since_ms
            ):
                state = initial()
            else:
                state = entry[0]
            attrs[sid] = [add(state, value, event_time_ms, event_id), now_ms]
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
        or live[sid].stale(updated_ms)
    ]
    for sid in dead:
        del row.attrs[sid]
    return bool(dead)
