"""Compile properties into plain getters over a parsed event (no pydantic on the hot path).

A getter is a closure built once per definition: it reads an atomic field, walks a compiled
path into the self-describing event or the ``index``-th entity of a schema, combines values
(calculated properties) and applies a ``date_part``. Missing data reads as ``None``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson

from signals_stream.definitions.paths import extract
from signals_stream.definitions.properties import (
    AtomicProperty,
    CalculatedProperty,
    EntityProperty,
    EventProperty,
)
from signals_stream.events.parse import shred_key

__all__ = [
    "EventView",
    "Getter",
    "NeededFields",
    "as_datetime",
    "as_text",
    "compile_property",
    "property_needs",
]


class EventView(Protocol):
    """What the compiled definitions read from a parsed event (``events.event.Event``)."""

    @property
    def event_vendor(self) -> str | None: ...
    @property
    def event_name(self) -> str | None: ...
    @property
    def event_version(self) -> str | None: ...
    @property
    def unstruct_key(self) -> str | None: ...
    @property
    def unstruct_data(self) -> dict[str, Any] | None: ...
    def atomic(self, name: str) -> Any: ...
    def entities(self, shred_key: str) -> list[dict[str, Any]]: ...


Getter = Callable[[EventView], Any]


@dataclass(frozen=True, slots=True)
class NeededFields:
    """What of an event a set of definitions reads: the repartition carries only this.

    Attributes:
        atomic: atomic column names.
        entities: entity shred keys (``contexts_com_acme_product_1``).
        unstruct: self-describing event shred keys (``unstruct_event_com_acme_click_1``).
    """

    atomic: frozenset[str] = frozenset()
    entities: frozenset[str] = frozenset()
    unstruct: frozenset[str] = frozenset()

    def __or__(self, other: NeededFields) -> NeededFields:
        return NeededFields(
            atomic=self.atomic | other.atomic,
            entities=self.entities | other.entities,
            unstruct=self.unstruct | other.unstruct,
        )

    @classmethod
    def union(cls, parts: Iterable[NeededFields]) -> NeededFields:
        """Merge many."""
        result = cls()
        for part in parts:
            result = result | part
        return result


def as_datetime(value: Any) -> datetime | None:
    """A UTC datetime from a datetime or an ISO 8601 string; ``None`` for anything else.

    Naive values are taken as UTC (Snowplow timestamps are UTC).
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def as_text(value: Any) -> str:
    """The string form of a value as SQL would cast it: ``true``/``false``, ISO datetimes."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return orjson.dumps(value).decode()


def _hour_of_day(dt: datetime) -> int:
    return dt.hour


def _day_of_week(dt: datetime) -> int:
    return dt.isoweekday()  # ISO: 1 = Monday ... 7 = Sunday


def _month_of_year(dt: datetime) -> int:
    return dt.month


def _active_day(dt: datetime) -> str:
    return dt.date().isoformat()


def _active_week(dt: datetime) -> str:
    return (dt.date() - timedelta(days=dt.weekday())).isoformat()  # ISO weeks start on Monday


def _active_month(dt: datetime) -> str:
    return dt.date().replace(day=1).isoformat()


_DATE_PARTS: dict[str, Callable[[datetime], int | str]] = {
    "hour_of_day": _hour_of_day,
    "day_of_week": _day_of_week,
    "month_of_year": _month_of_year,
    "active_day": _active_day,
    "active_week": _active_week,
    "active_month": _active_month,
}


def _with_date_part(raw: Getter, date_part: str | None) -> Getter:
    if date_part is None:
        return raw
    part = _DATE_PARTS[date_part]

    def get(event: EventView) -> Any:
        dt = as_datetime(raw(event))
        return None if dt is None else part(dt)

    return get


def _atomic_getter(prop: AtomicProperty) -> Getter:
    name = prop.name

    def get(event: EventView) -> Any:
        return event.atomic(name)

    return get


def _event_getter(prop: EventProperty) -> Getter:
    key = shred_key("unstruct_event", prop.vendor, prop.name, prop.major_version)
    steps = prop.steps

    def get(event: EventView) -> Any:
        if event.unstruct_key != key:
            return None
        return extract(event.unstruct_data, steps)

    return get


def _entity_getter(prop: EntityProperty) -> Getter:
    key = shred_key("contexts", prop.vendor, prop.name, prop.major_version)
    steps = prop.steps
    index = prop.index

    def get(event: EventView) -> Any:
        found = event.entities(key)
        if index >= len(found):
            return None
        return extract(found[index], steps)

    return get


def _leaf_getter(prop: AtomicProperty | EventProperty | EntityProperty) -> Getter:
    if isinstance(prop, AtomicProperty):
        raw = _atomic_getter(prop)
    elif isinstance(prop, EventProperty):
        raw = _event_getter(prop)
    else:
        raw = _entity_getter(prop)
    return _with_date_part(raw, prop.date_part)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _calculated_getter(prop: CalculatedProperty) -> Getter:
    getters = tuple(_leaf_getter(leaf) for leaf in prop.properties)
    operation = prop.operation

    if operation == "coalesce":

        def coalesce(event: EventView) -> Any:
            for getter in getters:
                value = getter(event)
                if value is not None:
                    return value
            return None

        return coalesce

    if operation == "concat":
        separator = prop.separator or ""

        def concat(event: EventView) -> Any:
            parts = [as_text(v) for v in (g(event) for g in getters) if v is not None]
            return separator.join(parts) if parts else None

        return concat

    reduce = _NUMERIC_OPS[operation]

    def numeric(event: EventView) -> Any:
        values = [g(event) for g in getters]
        # Null in, null out; a non-numeric input is treated as null rather than guessed at.
        if not all(_is_number(v) for v in values):
            return None
        return reduce(values)

    return numeric


def _product(values: list[Any]) -> Any:
    result = 1
    for value in values:
        result *= value
    return result


_NUMERIC_OPS: dict[str, Callable[[list[Any]], Any]] = {
    "sum": sum,
    "product": _product,
    "min": min,
    "max": max,
}


def compile_property(prop: Any) -> Getter:
    """Compile a property model into ``getter(event) -> value | None``.

    Args:
        prop: an atomic, event, entity or calculated property.

    Returns:
        The getter. Atomic values are typed by the event parser; timestamps become ``int`` or
        ``str`` once a ``date_part`` is applied.
    """
    if isinstance(prop, CalculatedProperty):
        return _calculated_getter(prop)
    return _leaf_getter(prop)


def property_needs(prop: Any) -> NeededFields:
    """The atomic columns and shred keys a property reads."""
    if prop is None:
        return NeededFields()
    if isinstance(prop, CalculatedProperty):
        return NeededFields.union(property_needs(leaf) for leaf in prop.properties)
    if isinstance(prop, AtomicProperty):
        return NeededFields(atomic=frozenset({prop.name}))
    if isinstance(prop, EventProperty):
        key = shred_key("unstruct_event", prop.vendor, prop.name, prop.major_version)
        return NeededFields(unstruct=frozenset({key}))
    key = shred_key("contexts", prop.vendor, prop.name, prop.major_version)
    return NeededFields(entities=frozenset({key}))
