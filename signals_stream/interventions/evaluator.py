"""Decide which rules fire on an attribute update, and build their payloads. Never sends.

**Edge triggering** (``docs:interventions`` "Criteria"). A rule fires when its criteria did not
hold on the previous values and hold on the new ones. So a threshold fires once when crossed.
It re-arms as soon as the criteria are seen not holding, in either reading, and fires again on the
next crossing. That covers a rolling window or TTL that lapsed between updates. A rule published
while an entity already meets its criteria does not fire for it until the criteria stop holding
and hold again. The same goes for a new version of the rule, so re-publishing a rule never
triggers a burst of firings.

``changed`` rules fire on **every** update that changes the attribute, including the first value.
They keep no latch.

**Fired state** (kept in the entity row). The set of ``name:version`` keys of the edge rules whose
criteria held at their last evaluation. :func:`evaluate` returns the updated set. When
``previous`` is None (a re-check without an update, such as a timer), membership stands in for
"held before", and ``changed`` cannot hold. Keys of other versions of an evaluated rule are
dropped; :func:`prune_fired` drops keys of rules no longer active.

**Ids.** ``intervention_id`` is a UUID v5 of (event id, rule name, version). A replayed event
yields the same id, so clients dedupe it; every target of one firing shares it. For an update of
several events, :func:`evaluate` attributes every firing to the last one; the engine then moves
it to the event at which the criteria first held (:meth:`Firing.triggered_by`), so the id does
not depend on how a replay splits batches.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import orjson

from signals_stream.definitions.evaluate import as_text
from signals_stream.interventions.instance import InstanceDict
from signals_stream.interventions.matcher import ResolvedRule
from signals_stream.interventions.rule_criteria import Values

__all__ = [
    "INTERVENTION_NAMESPACE",
    "Evaluation",
    "Firing",
    "build_instance",
    "build_instances",
    "evaluate",
    "intervention_id",
    "payload_attributes",
    "prune_fired",
    "render_value",
]

# Fixed forever: changing it changes every intervention id (uuid5(NAMESPACE_URL, <this url>)).
INTERVENTION_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://signals-stream/interventions")


def intervention_id(event_id: str, name: str, version: int) -> str:
    """The deterministic id of rule ``name`` v``version`` fired by event ``event_id``."""
    return str(uuid.uuid5(INTERVENTION_NAMESPACE, f"{event_id}\n{name}\n{version}"))


@dataclass(frozen=True, slots=True)
class Firing:
    """One rule that fired on one update.

    Attributes:
        rule: the resolved rule (targets, payload groups).
        intervention_id: shared by every target of this firing.
        triggering: the rule's referenced attributes, ``group:attribute`` -> new value.
        event_id: the event that triggered it.
        event_time_ms: that event's time.
        triggered_at_ms: wall clock of the evaluation.
    """

    rule: ResolvedRule
    intervention_id: str
    triggering: Mapping[str, Any]
    event_id: str
    event_time_ms: int
    triggered_at_ms: int

    @property
    def name(self) -> str:
        return self.rule.name

    @property
    def version(self) -> int:
        return self.rule.version

    def triggered_by(self, event_id: str, event_time_ms: int) -> Firing:
        """This firing attributed to another event of the same update (a new id follows)."""
        return replace(
            self,
            intervention_id=intervention_id(event_id, self.name, self.version),
            event_id=event_id,
            event_time_ms=event_time_ms,
        )


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What an update produced: the firings, in rule-name order, and the row's new fired set."""

    firings: tuple[Firing, ...]
    fired: frozenset[str]


def evaluate(
    rules: Iterable[ResolvedRule],
    previous: Values | None,
    current: Values,
    fired: Collection[str],
    *,
    event_id: str,
    event_time_ms: int,
    triggered_at_ms: int,
) -> Evaluation:
    """Evaluate the rules an update concerns (``RuleIndex.relevant``), edge-triggered.

    Args:
        rules: the rules to evaluate.
        previous: values before the update, ``group:attribute`` -> value (missing = null); None
            for a re-check without an update (the fired set then stands for "held before").
        current: values after the update, read the same way.
        fired: the entity's fired set (``name:version`` keys).
        event_id: id of the triggering event (seeds ``intervention_id``).
        event_time_ms: its event time.
        triggered_at_ms: wall clock now.

    Returns:
        The firings and the fired set to store back in the row.
    """
    state = set(fired)
    firings: list[Firing] = []
    keys: dict[str, str] = {}
    for rule in sorted(rules, key=lambda r: r.name):
        keys[rule.name] = rule.key
        # Without an update nothing changed: `changed` sees current on both sides.
        met = rule.predicate(current if previous is None else previous, current)
        if rule.uses_changed:
            state.discard(rule.key)
            fire = met
        else:
            held = rule.key in fired if previous is None else rule.predicate(previous, previous)
            fire = met and not held
            (state.add if met else state.discard)(rule.key)
        if fire:
            firings.append(
                Firing(
                    rule=rule,
                    intervention_id=intervention_id(event_id, rule.name, rule.version),
                    triggering={ref.name: current.get(ref.name) for ref in rule.references},
                    event_id=event_id,
                    event_time_ms=event_time_ms,
                    triggered_at_ms=triggered_at_ms,
                )
            )
    # A newer version replaces the latch of an older one (or vice versa, on a rollback).
    state = {k for k in state if keys.get(k.partition(":")[0], k) == k}
    return Evaluation(firings=tuple(firings), fired=frozenset(state))


def prune_fired(fired: Collection[str], active_keys: Collection[str]) -> frozenset[str]:
    """The fired set without keys of rules no longer active (``RuleIndex.active_keys``)."""
    return frozenset(k for k in fired if k in active_keys)


def render_value(value: Any) -> str | None:
    """The payload's string form of an attribute value; None means "leave the key out".

    Strings are kept as they are. Booleans become ``true`` / ``false``. Integers are written in
    decimal. Floats use Python's shortest round-trip form (``250.0``, ``0.1``, ``1e+16``), and
    NaN / ±infinity become ``NaN`` / ``Infinity`` / ``-Infinity``. Timestamps are ISO 8601 with
    ``Z``. Lists and dicts are compact JSON with sorted keys. Null values are left out, so that
    they are not confused with the string ``"null"``.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, datetime):
        return as_text(value)
    options = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
    return orjson.dumps(value, option=options, default=str).decode()


def payload_attributes(
    firing: Firing, payload_values: Mapping[tuple[str, int], Mapping[str, Any]]
) -> dict[str, str]:
    """The payload's ``attributes``: the triggering attributes, then the payload groups'.

    Keys are bare attribute names, as in the docs' payload and the SSE capture. A name already
    taken by another group's attribute is written ``group:attribute`` instead. A repeat from the
    same group keeps the first value.

    Args:
        firing: the firing.
        payload_values: ``(group, version)`` -> that group's values by attribute name, for
            ``firing.rule.payload_groups`` (missing groups contribute nothing).
    """
    out: dict[str, str] = {}
    owners: dict[str, str] = {}  # bare name -> the group that claimed it (even if null)

    def put(group: str, attribute: str, value: Any) -> None:
        owner = owners.setdefault(attribute, group)
        name = attribute if owner == group else f"{group}:{attribute}"
        text = render_value(value)
        if text is not None and name not in out:
            out[name] = text

    for ref in firing.rule.references:
        put(ref.group, ref.attribute, firing.triggering.get(ref.name))
    for group, version in firing.rule.payload_groups:
        for attribute, value in payload_values.get((group, version), {}).items():
            put(group, attribute, value)
    return out


def build_instance(
    *,
    intervention_id: str,
    name: str,
    version: int,
    target_name: str,
    target_id: str,
    attributes: Mapping[str, str],
    event_id: str | None = None,
    event_time_ms: int | None = None,
    triggered_at_ms: int | None = None,
) -> InstanceDict:
    """One ``InterventionInstance`` as a JSON-ready dict, for one target.

    The SDK fields come first, then our metadata (left out when None); SDK clients ignore it.
    """
    instance: InstanceDict = {
        "intervention_id": intervention_id,
        "name": name,
        "version": version,
        "target_attribute_key": {"name": target_name, "id": target_id},
        "attributes": dict(attributes),
    }
    if triggered_at_ms is not None:
        instance["triggered_at_ms"] = triggered_at_ms
    if event_id is not None:
        instance["event_id"] = event_id
    if event_time_ms is not None:
        instance["event_time_ms"] = event_time_ms
    return instance


def build_instances(
    firing: Firing,
    *,
    target_ids: Mapping[str, str | None],
    payload_values: Mapping[tuple[str, int], Mapping[str, Any]],
) -> list[InstanceDict]:
    """Every instance of a firing: one per target key the event has an id for.

    Args:
        firing: the firing.
        target_ids: attribute key name -> id, taken from the triggering event.
        payload_values: as for :func:`payload_attributes`.

    Returns:
        One dict per target in ``firing.rule.targets`` order. A target without an id in the
        event is skipped, so the list may be empty.
    """
    attributes = payload_attributes(firing, payload_values)
    return [
        build_instance(
            intervention_id=firing.intervention_id,
            name=firing.name,
            version=firing.version,
            target_name=target,
            target_id=target_id,
            attributes=attributes,
            event_id=firing.event_id,
            event_time_ms=firing.event_time_ms,
            triggered_at_ms=firing.triggered_at_ms,
        )
        for target in firing.rule.targets
        if (target_id := target_ids.get(target))
    ]
