"""Definitions compiled for the hot path: plain closures over a parsed event, built once.

``compile_attribute`` turns an :class:`Attribute` into a :class:`CompiledAttribute` whose
``matches_event``, ``passes_criteria`` and ``value`` are closures (no pydantic, no ``eval``);
``compile_key`` does the same for a key's id. ``needed_fields`` reports what of an event a set
of definitions reads, so the repartition can carry only that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from signals_stream.definitions.attributes import Attribute
from signals_stream.definitions.criteria import Criteria, Predicate, always, compile_criteria
from signals_stream.definitions.durations import duration_ms
from signals_stream.definitions.evaluate import (
    EventView,
    Getter,
    NeededFields,
    compile_property,
    property_needs,
)
from signals_stream.definitions.groups import AttributeGroup
from signals_stream.definitions.hashing import definition_hash
from signals_stream.definitions.keys import AttributeKey
from signals_stream.definitions.properties import AtomicProperty
from signals_stream.definitions.selectors import EVENT_SPECIFICATION_SCHEMA, EventSelector
from signals_stream.errors import DefinitionError
from signals_stream.events.parse import shred_key

__all__ = [
    "CompiledAttribute",
    "CompiledGroup",
    "CompiledKey",
    "attribute_needs",
    "compile_attribute",
    "compile_events",
    "compile_group",
    "compile_key",
    "needed_fields",
    "no_value",
]

_DERIVED_TSTAMP = AtomicProperty(name="derived_tstamp")
_SPEC_KEY = shred_key("contexts", *EVENT_SPECIFICATION_SCHEMA)
_EVENT_COLUMNS = frozenset({"event_vendor", "event_name", "event_version"})


def no_value(event: EventView) -> None:
    """The value getter of an attribute whose reducer takes none (``counter``)."""
    return None


@dataclass(frozen=True, slots=True)
class CompiledAttribute:
    """An attribute ready to run.

    Attributes:
        name: attribute name.
        definition_hash: identity of its state (shared by identical definitions).
        aggregation: the reducer to apply.
        type: the result type.
        period_ms: rolling window in ms, ``None`` for lifetime.
        time_unit: unit of ``time_since_*`` results, else ``None``.
        matches_event: ``(event) -> bool``, the ``events`` selectors.
        passes_criteria: ``(event) -> bool``, the ``criteria`` filter.
        value: ``(event) -> Any``, the property value (``None`` for ``counter``; the
            ``derived_tstamp`` datetime for ``time_since_*``).
        needs: what of the event this attribute reads.
        definition: the source model.
        selects_by_identity: ``matches_event`` reads only the event's vendor, name and
            version (no event-specification selector), so its answer holds for every event of
            one identity and can be cached (``engine.catalog.KeyProgram.candidates``).
    """

    name: str
    definition_hash: str
    aggregation: str
    type: str
    period_ms: int | None
    time_unit: str | None
    matches_event: Predicate
    passes_criteria: Predicate
    value: Getter
    needs: NeededFields
    definition: Attribute
    selects_by_identity: bool = True

    def accepts(self, event: EventView) -> bool:
        """Whether ``event`` updates this attribute: selected and passing the criteria."""
        return self.matches_event(event) and self.passes_criteria(event)


@dataclass(frozen=True, slots=True)
class CompiledKey:
    """An attribute key ready to run.

    Attributes:
        name: key name.
        key_value: ``(event) -> str | None``, the entity id (``None`` or ``""`` read as none).
        needs: what of the event the key reads.
    """

    name: str
    key_value: Callable[[EventView], str | None]
    needs: NeededFields


@dataclass(frozen=True, slots=True)
class CompiledGroup:
    """A stream attribute group ready to run: its key and its attributes."""

    name: str
    version: int
    key: CompiledKey
    attributes: tuple[CompiledAttribute, ...]

    @property
    def needs(self) -> NeededFields:
        """What of an event the group reads."""
        return NeededFields.union([self.key.needs, *(a.needs for a in self.attributes)])


def compile_events(selectors: Iterable[EventSelector]) -> Predicate:
    """Compile ``events`` selectors into ``(event) -> bool``; no selectors match every event."""
    exact: set[tuple[str | None, str | None, str | None]] = set()
    partial: list[tuple[str | None, str | None, str | None]] = []
    specs: set[str] = set()
    selectors = tuple(selectors)
    if not selectors:
        return always
    for sel in selectors:
        if sel.event_specification_id is not None:
            specs.add(sel.event_specification_id)
            continue
        triple = (sel.vendor, sel.name, sel.version)
        if None not in triple:
            exact.add(triple)
        elif triple == (None, None, None):
            return always  # a selector without fields selects everything
        else:
            partial.append(triple)
    partial_t = tuple(partial)
    exact_f = frozenset(exact)
    specs_f = frozenset(specs)

    def matches(event: EventView) -> bool:
        vendor, name, version = event.event_vendor, event.event_name, event.event_version
        if (vendor, name, version) in exact_f:
            return True
        for p_vendor, p_name, p_version in partial_t:
            if (
                (p_vendor is None or p_vendor == vendor)
                and (p_name is None or p_name == name)
                and (p_version is None or p_version == version)
            ):
                return True
        if specs_f:
            return any(entity.get("id") in specs_f for entity in event.entities(_SPEC_KEY))
        return False

    return matches


def _events_needs(selectors: Iterable[EventSelector]) -> NeededFields:
    selectors = tuple(selectors)
    by_identity = any(s.event_specification_id is None for s in selectors)
    by_spec = any(s.event_specification_id is not None for s in selectors)
    return NeededFields(
        atomic=_EVENT_COLUMNS if by_identity else frozenset(),
        entities=frozenset({_SPEC_KEY}) if by_spec else frozenset(),
    )


def _criteria_needs(criteria: Criteria | None) -> NeededFields:
    if criteria is None:
        return NeededFields()
    return NeededFields.union(
        property_needs(c.property) for c in (*(criteria.all or ()), *(criteria.any or ()))
    )


def _value_property(attribute: Attribute) -> Any:
    if attribute.aggregation == "counter":
        return None  # counter ignores any property
    if attribute.aggregation in ("time_since_last", "time_since_first"):
        return _DERIVED_TSTAMP
    return attribute.property


def attribute_needs(attribute: Attribute) -> NeededFields:
    """What of an event one attribute reads (selectors, value and criteria)."""
    return (
        _events_needs(attribute.events)
        | property_needs(_value_property(attribute))
        | _criteria_needs(attribute.criteria)
    )


def compile_attribute(attribute: Attribute, key: AttributeKey) -> CompiledAttribute:
    """Compile one attribute of a group keyed by ``key``.

    Args:
        attribute: the definition.
        key: its group's attribute key (part of the state identity).

    Returns:
        The compiled attribute.
    """
    prop = _value_property(attribute)
    return CompiledAttribute(
        name=attribute.name,
        definition_hash=definition_hash(attribute, key),
        aggregation=attribute.aggregation,
        type=attribute.type,
        period_ms=None if attribute.period is None else duration_ms(attribute.period),
        time_unit=attribute.time_unit,
        matches_event=compile_events(attribute.events),
        passes_criteria=compile_criteria(attribute.criteria),
        value=no_value if prop is None else compile_property(prop),
        needs=attribute_needs(attribute),
        definition=attribute,
        selects_by_identity=all(s.event_specification_id is None for s in attribute.events or ()),
    )


def _as_id(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def compile_key(key: AttributeKey) -> CompiledKey:
    """Compile a key into ``key_value(event) -> str | None``.

    Ids are strings: numbers are written with ``str``, booleans as ``true``/``false``; empty
    strings, objects and arrays are no id.

    Raises:
        DefinitionError: the key has no event source (a reference by name that the registry
            must resolve first, or a warehouse-only key).
    """
    source = key.source
    if source is None:
        raise DefinitionError(
            f"attribute_key {key.name!r} has no event source: give it a property "
            "(or resolve the registered key before compiling)"
        )
    get = compile_property(source)

    def key_value(event: EventView) -> str | None:
        return _as_id(get(event))

    return CompiledKey(name=key.name, key_value=key_value, needs=property_needs(source))


def compile_group(group: AttributeGroup) -> CompiledGroup:
    """Compile a stream group: its key and every attribute.

    Raises:
        DefinitionError: the group is not a stream group, or its key has no event source.
    """
    if group.kind != "stream":
        raise DefinitionError(
            f"attribute group {group.full_name} is a {group.kind} group; only stream groups "
            "are computed from events"
        )
    return CompiledGroup(
        name=group.name,
        version=group.version,
        key=compile_key(group.attribute_key),
        attributes=tuple(compile_attribute(a, group.attribute_key) for a in group.attributes or ()),
    )


def needed_fields(
    *,
    attributes: Iterable[Attribute] = (),
    keys: Iterable[AttributeKey] = (),
    groups: Iterable[AttributeGroup] = (),
) -> NeededFields:
    """What of an event a set of definitions reads; the repartition carries only this.

    Args:
        attributes: attributes (their selectors, values and criteria).
        keys: attribute keys (their id source).
        groups: groups (their key and attributes).

    Returns:
        Atomic column names, entity shred keys and self-describing event shred keys. The event
        time the engine orders by is not included unless a definition reads it.
    """
    parts = [attribute_needs(a) for a in attributes]
    parts += [property_needs(k.source) for k in keys]
    for group in groups:
        parts.append(property_needs(group.attribute_key.source))
        parts += [attribute_needs(a) for a in group.attributes or ()]
    return NeededFields.union(parts)
