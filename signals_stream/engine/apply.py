"""Apply an entity's events from one batch to its row: replays skipped, the rest folded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, cast

from signals_stream.engine.backfill import admit_live
from signals_stream.engine.catalog import Catalog
from signals_stream.engine.event_buffer import append_events, prune_buffers
from signals_stream.engine.fold import fold_events, prune_row
from signals_stream.engine.row import EntityRow
from signals_stream.events.parse import Event

__all__ = ["Applied", "SourcedEvent", "apply_record"]


class SourcedEvent(NamedTuple):
    """One event of an entity with the input position it was read from."""

    partition: int  # input partition
    offset: int  # input offset: at or below the row's for ``partition`` means applied before
    projection: bytes  # the compact event (``Event.project``)
    # Backfill ids the routing plan knew (``engine.backfill``): only such events are live for
    # a backfilled slot.
    backfills: tuple[str, ...] = ()


class Applied(NamedTuple):
    """What :func:`apply_record` did with an entity's events."""

    applied: int
    replays: int  # at or below the row's input offset: already applied
    duplicates: int  # an event id the row saw recently (``dedupe_ids``)
    events: tuple[Event, ...] = ()  # the events folded, in order (interventions find triggers)


def apply_record(
    row: EntityRow,
    catalog: Catalog,
    key_name: str,
    events: Sequence[SourcedEvent],
    *,
    now_ms: int,
    dedupe_ids: int = 0,
    decoded: dict[bytes, Event] | None = None,
) -> Applied:
    """Fold an entity's ``(input partition, input offset, projection)`` events into ``row``,
    skipping those applied before (by source offset).

    Args:
        dedupe_ids: when > 0, also drop events whose Snowplow ``event_id`` is among the last
            ``dedupe_ids`` ids this row applied (the pipeline upstream is at-least-once too).
        decoded: projections decoded so far, by their bytes (shared by the rows of one batch:
            an event routed to several keys is decoded once, not once per key). Events are
            read-only to the engine, so one decoded event can serve every row.
    """
    fresh = []
    sourced: list[tuple[Sequence[object], Event]] = []  # (the item as given, its event)
    replays = duplicates = 0
    seen = set(row.recent_ids) if dedupe_ids else None
    for item in events:
        partition, offset, projection = item[0], item[1], item[2]  # plain tuples too
        if row.already_applied(partition, offset):
            replays += 1
            continue
        row.mark_applied(partition, offset)
        if decoded is None:
            event = Event.from_projection(projection)
        else:
            event = decoded.get(projection)  # type: ignore[assignment]
            if event is None:
                event = decoded[projection] = Event.from_projection(projection)
        if seen is not None:
            if event.event_id in seen:
                duplicates += 1
                continue
            seen.add(event.event_id)
            row.recent_ids.append(event.event_id)
        fresh.append(event)
        sourced.append((item, event))
    if dedupe_ids and len(row.recent_ids) > dedupe_ids:
        del row.recent_ids[:-dedupe_ids]
    program = catalog.programs.get(key_name)
    logs = catalog.logs_by_key.get(key_name, {})
    if fresh:
        backfills = catalog.backfills_by_key.get(key_name)
        if program is not None and backfills:
            fold_events(row, catalog.steady_programs[key_name], fresh, now_ms)
            for backfill in backfills:
                flagged = [
                    (cast(int, item[0]), cast(int, item[1]), event)
                    for item, event in sourced
                    if len(item) > 3 and backfill.id in cast(tuple[str, ...], item[3])
                ]
                taken = admit_live(row, backfill, flagged)
                if taken:
                    fold_events(row, backfill.program, taken, now_ms)
        elif program is not None:
            fold_events(row, program, fresh, now_ms)
        if logs:
            append_events(row, logs.values(), fresh)
        row.record_events(fresh, now_ms=now_ms)
    prune_row(row, program, now_ms)
    if row.logs:
        prune_buffers(row, logs)
    return Applied(len(fresh), replays, duplicates, tuple(fresh))
