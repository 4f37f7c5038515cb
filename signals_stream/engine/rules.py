"""Interventions on an entity row: the watched attributes before and after an update, the
rules that fire, and their payloads (one per target). Pure: delivery is the agent's."""

from __future__ import annotations

from typing import Any

from signals_stream.engine.catalog import Catalog
from signals_stream.engine.read import read_attribute, read_group
from signals_stream.events import Event
from signals_stream.interventions import build_instances, evaluate
from signals_stream.state import EntityRow

__all__ = ["fire_interventions", "watched_values"]


def watched_values(row: EntityRow, catalog: Catalog, key_name: str, now_ms: int) -> dict[str, Any]:
    """``group:attribute`` -> value of every attribute a rule on ``key_name`` entities reads.

    Read at ``now_ms`` right after the update, so rolling windows hold the values as of the
    triggering event."""
    index = catalog.rules
    values: dict[str, Any] = {}
    for name in index.watched(key_name):
        ref = index.reference(name)
        group = None if ref is None else catalog.groups.get((ref.group, ref.version))
        if ref is not None and group is not None:
            values[name] = read_attribute(row, group.attribute(ref.attribute), now_ms)
    return values


def fire_interventions(
    row: EntityRow,
    catalog: Catalog,
    key_name: str,
    entity_id: str,
    previous: dict[str, Any],
    event: Event,
    now_ms: int,
) -> list[dict[str, Any]]:
    """Evaluate the rules whose attributes changed; update ``row.fired``; return the
    ``InterventionInstance`` dicts to deliver (one per target, sharing an intervention id
    derived from the triggering event, so a replay re-sends the same id)."""
    current = watched_values(row, catalog, key_name, now_ms)
    changed = [name for name, value in current.items() if previous.get(name, None) != value]
    if not changed:
        return []
    evaluation = evaluate(
        catalog.rules.relevant(changed),
        previous,
        current,
        row.fired,
        event_id=event.event_id,
        event_time_ms=event.event_time_ms,
        triggered_at_ms=now_ms,
    )
    row.fired = sorted(evaluation.fired)
    instances: list[dict[str, Any]] = []
    for firing in evaluation.firings:
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
