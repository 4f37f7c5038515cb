"""Apply an entity's events from one batch to its row: the entity agent's whole step."""

from __future__ import annotations

from signals_stream.engine.catalog import Catalog
from signals_stream.engine.fold import fold_events, prune_row
from signals_stream.events import Event
from signals_stream.state import EntityRow

__all__ = ["apply_record"]


def apply_record(
    row: EntityRow,
    catalog: Catalog,
    key_name: str,
    events: list[tuple[int, int, bytes]],
    *,
    now_ms: int,
) -> int:
    """Fold an entity's ``(input partition, input offset, projection)`` events into ``row``,
    skipping those applied before (by source offset).

    Returns:
        How many events were replays and skipped.
    """
    fresh = []
    for partition, offset, projection in events:
        if row.already_applied(partition, offset):
            continue
        row.mark_applied(partition, offset)
        fresh.append(Event.from_projection(projection))
    program = catalog.programs.get(key_name)
    if fresh:
        if program is not None:
            fold_events(row, program, fresh, now_ms)
        row.record_events(fresh, now_ms=now_ms)
    prune_row(row, program, now_ms)
    return len(events) - len(fresh)
