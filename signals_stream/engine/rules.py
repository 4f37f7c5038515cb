"""Interventions on an entity row: the watched attributes before and after an update, the
rules that fire, and their payloads (one per target). Pure: delivery is the agent's."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from signals_stream.engine.catalog import Catalog
from signals_stream.engine.fold import fold_events
from signals_stream.engine.read import read_attribute, read_group
from signals_stream.engine.row import EntityRow
from signals_stream.events.parse import Event
from signals_stream.interventions import ResolvedRule, build_instances, evaluate
from signals_stream.interventions.instance import InstanceDict

__all__ = ["fire_interventions", "first_triggers", "watched_values"]


def watched_values(row: EntityRow, catalog: Catalog, key_name: str, now_ms: int) -> dict[str, Any]:
    """``group:attribute`` -> value of every attribute a rule on ``key_name`` entities reads.

    Read at ``now_ms`` right after the update, so rolling windows hold the values as of the
    triggering event."""
    return {
        name: read_attribute(row, attribute, now_ms)
        for name, attribute in catalog.watched_attributes.get(key_name, ())
    }


def fire_interventions(
    row: EntityRow,
    catalog: Catalog,
    key_name: str,
    entity_id: str,
    previous: dict[str, Any],
    events: Sequence[Event],
    now_ms: int,
    *,
    before: Callable[[], EntityRow],
) -> list[InstanceDict]:
    """Evaluate the rules whose attributes changed; update ``row.fired``; return the
    ``InterventionInstance`` dicts to deliver (one per target, sharing an intervention id).

    Args:
        row: the row after the update.
        previous: the watched values before it.
        events: the events of the update, in the order they were folded.
        before: a fresh copy of the row as it was before the update. Called only when a rule
            fires on an update of several events, to find the event that triggered it.

    The id derives from the event after which the rule's criteria first held, not from the
    last event of the update: a replay after a crash may split the events into other batches,
    and must re-send the same id for the same firing.
    """
    if not events:
        return []
    current = watched_values(row, catalog, key_name, now_ms)
    changed = [name for name, value in current.items() if previous.get(name, None) != value]
    if not changed:
        return []
    last = events[-1]
    evaluation = evaluate(
        catalog.rules.relevant(changed),
        previous,
        current,
        row.fired,
        event_id=last.event_id,
        event_time_ms=last.event_time_ms,
        triggered_at_ms=now_ms,
    )
    row.fired = sorted(evaluation.fired)
    if not evaluation.firings:
        return []
    triggers: dict[str, Event] = {}
    if len(events) > 1:  # rare: only an update that fired pays for the re-fold
        rules = [firing.rule for firing in evaluation.firings]
        triggers = first_triggers(rules, events, previous, before(), catalog, key_name, now_ms)
    instances: list[InstanceDict] = []
    for firing in evaluation.firings:
        event = triggers.get(firing.name, last)
        if event is not last:
            firing = firing.triggered_by(event.event_id, event.event_time_ms)
        # Target ids come from the triggering event too.
        target_ids: dict[str, str | None] = {key_name: entity_id}
        for target in firing.rule.targets:
            program = catalog.programs.get(target)
            if target != key_name and program is not None:
                target_ids[target] = program.key.key_value(event)
        payload = {
            (name, version): read_group(row, catalog.groups[(name, version)], now_ms)
            for name, version in firing.rule.payload_groups
            if (name, version) in catalog.groups
            and catalog.groups[(name, version)].key_name == key_name
        }
        instances += build_instances(firing, target_ids=target_ids, payload_values=payload)
    return instances


def first_triggers(
    rules: Iterable[ResolvedRule],
    events: Sequence[Event],
    previous: dict[str, Any],
    start: EntityRow,
    catalog: Catalog,
    key_name: str,
    now_ms: int,
) -> dict[str, Event]:
    """Rule name -> the first of ``events`` after which the rule's criteria hold (against
    ``previous``), found by folding the events one by one into ``start`` (the row before
    them; it is modified). Rules that hold only after the last event are left out.

    Folding is the same step as the update's (same ``now_ms``) over the slots the rules read,
    so after the last event the watched values are the update's; every prefix is what an
    update of exactly those events would see.
    """
    program = catalog.watched_programs.get(key_name)  # only what the rules read
    pending = list(rules)
    found: dict[str, Event] = {}
    if program is None:
        return found
    for event in events[:-1]:
        fold_events(start, program, (event,), now_ms)
        values = watched_values(start, catalog, key_name, now_ms)
        for rule in [r for r in pending if r.predicate(previous, values)]:
            found[rule.name] = event
            pending.remove(rule)
        if not pending:
            break
    return found
