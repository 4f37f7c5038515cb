"""Fold a stretch of history for chosen entities, judged on event time (pure).

The same engine code as the live stream (``fold_events``, ``watched_values``,
``fire_interventions``), driven differently: every event is folded on its own, with the
clock set to *its* event time, so rolling windows, TTLs and rule edges are decided as they
were when the event happened, not when it is read. ``test()``, the intervention preview and
backfill read the input log and hand its parsed events to :class:`EntityHistory`; the
training-dataset builder can do the same.

    parsed events -> EntityHistory.add (key, window, app ids; kept as projections)
                  -> fold_on_event_time(catalog, key, id, events) -> row (+ firings)
                  -> read_group(row, group, now)   values as of now
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from signals_stream.definitions import CompiledKey
from signals_stream.engine.catalog import Catalog
from signals_stream.engine.fold import fold_events
from signals_stream.engine.row import EntityRow
from signals_stream.engine.rules import fire_interventions, watched_values
from signals_stream.events.event import Event, Projection
from signals_stream.interventions import ResolvedRule
from signals_stream.interventions.instance import InstanceDict

__all__ = [
    "EntityHistory",
    "Replayed",
    "fold_on_event_time",
    "in_time_order",
    "latest_targets",
    "matches_now",
]

_MAX_ID_CHARS = 1024  # as the router: longer values are not identifiers


class Replayed(NamedTuple):
    """One entity's history folded: its row and the firings the rules would have sent."""

    row: EntityRow
    instances: list[InstanceDict]


def in_time_order(events: Iterable[Event]) -> list[Event]:
    """Events by event time, ties by ``event_id``: one order whatever the partition a record
    came from and however the log was read."""
    return sorted(events, key=lambda e: (e.event_time_ms, e.event_id))


def fold_on_event_time(
    catalog: Catalog,
    key_name: str,
    entity_id: str,
    events: Sequence[Event],
    *,
    rules: bool = False,
) -> Replayed:
    """Fold ``events`` (one entity's) into a new row, each at its own event time.

    Args:
        rules: also evaluate the catalog's rules after each event, edge-triggered as the
            stream does (values before the event against values after it, both read at the
            event's time), and return every firing.

    The events are folded in :func:`in_time_order`; a slot's last-update time, which TTLs are
    measured from, is the time of the last event it took.
    """
    row = EntityRow()
    program = catalog.programs.get(key_name)
    instances: list[InstanceDict] = []
    if program is None:
        return Replayed(row, instances)
    watched = rules and bool(catalog.rules.watched(key_name))
    for event in in_time_order(events):
        at_ms = event.event_time_ms
        previous = watched_values(row, catalog, key_name, at_ms) if watched else {}
        one = (event,)
        fold_events(row, program, one, at_ms)
        row.record_events(one, now_ms=at_ms)
        if watched:
            # One event per update: `before` (for finding the trigger among several) is unused.
            instances += fire_interventions(
                row, catalog, key_name, entity_id, previous, one, at_ms, before=EntityRow
            )
    return Replayed(row, instances)


class _Unknown:
    """A previous value equal to nothing: with no previous values, every ``changed`` holds."""


_UNKNOWN = _Unknown()


def matches_now(row: EntityRow, catalog: Catalog, rule: ResolvedRule, now_ms: int) -> bool:
    """Whether ``rule``'s criteria hold on ``row`` read at ``now_ms``; ``changed`` counts as
    holding (as in Signals' preview: there is no previous value to compare with)."""
    current = watched_values(row, catalog, rule.key_name, now_ms)
    return rule.predicate(dict.fromkeys(current, _UNKNOWN), current)


def latest_targets(
    events: Sequence[Event], catalog: Catalog, targets: Iterable[str]
) -> dict[str, str]:
    """The ids a firing on the latest of ``events`` (in :func:`in_time_order`) would be sent
    to, per target key: as live, a target's id is its key's value on the triggering event,
    and a target key no published group reads, or without a value there, gets none."""
    if not events:
        return {}
    last = in_time_order(events)[-1]
    found: dict[str, str] = {}
    for target in targets:
        program = catalog.programs.get(target)
        value = None if program is None else program.key.key_value(last)
        if value:
            found[target] = str(value)
    return found


@dataclass
class EntityHistory:
    """The events of one attribute key's entities within a time window, grouped by id.

    Events are kept as projections (only what the catalog's definitions read), so a long
    window costs a few hundred bytes per event.

    Attributes:
        key: the attribute key whose ids group the events.
        projection: what to keep of each event (``Catalog.routing_plan().projection``).
        start_ms / end_ms: the window on event time, ``[start, end]``.
        ids: keep only these ids (``None``: every id).
        app_ids: keep only events of these ``app_id`` s (empty: every app).
    """

    key: CompiledKey
    projection: Projection
    start_ms: int
    end_ms: int
    ids: Collection[str] | None = None
    app_ids: Collection[str] = ()
    kept: int = 0  # events kept
    outside: int = 0  # events outside the window or the app ids, or without an id
    _events: dict[str, list[bytes]] = field(default_factory=dict, repr=False)
    _last_ms: dict[str, int] = field(default_factory=dict, repr=False)

    def add(self, event: Event) -> bool:
        """Keep ``event`` if it belongs to the window, the app ids and the ids; whether kept."""
        t = event.event_time_ms
        if not self.start_ms <= t <= self.end_ms or (
            self.app_ids and event.atomic("app_id") not in self.app_ids
        ):
            self.outside += 1
            return False
        value = self.key.key_value(event)
        entity_id = None if value is None else str(value)
        if not entity_id or len(entity_id) > _MAX_ID_CHARS:
            self.outside += 1
            return False
        if self.ids is not None and entity_id not in self.ids:
            return False
        self._events.setdefault(entity_id, []).append(event.project(self.projection))
        self._last_ms[entity_id] = max(t, self._last_ms.get(entity_id, t))
        self.kept += 1
        return True

    @property
    def seen(self) -> int:
        """How many distinct ids have events."""
        return len(self._events)

    def most_recent(self, n: int) -> list[str]:
        """The ``n`` ids whose last event is the most recent (ties by id), newest first."""
        return sorted(self._last_ms, key=lambda i: (-self._last_ms[i], i))[:n]

    def events(self, entity_id: str) -> list[Event]:
        """The kept events of ``entity_id``, in the order they were added."""
        return [Event.from_projection(raw) for raw in self._events.get(entity_id, ())]

    def entity_ids(self) -> list[str]:
        """Every id with kept events, sorted."""
        return sorted(self._events)
