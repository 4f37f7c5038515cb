"""A stream group's reducer states from the warehouse, up to a cut-over (pure).

The warehouse part of a backfill (``docs/semantics.md`` "Backfill from the warehouse"): the
queries of ``batch.backfill_sql`` over the events collected in ``[since, cut)`` give, per
entity, each attribute's partial state in SQL columns; :class:`StatesBuilder` turns their rows
into the states the stream's windows keep (``engine.windows``: one reducer state for a
lifetime attribute, ``[[bucket start, state], ...]`` for a period), with each attribute's
latest event time (a TTL'd slot's update time, judged on event time). The entity rows then
merge them with the windows' own ``merge`` (``engine.warehouse_states``).

Per shape: scalar states as ``batch.incremental`` keeps them (a count, a sum, a mean's sum
and count, an extreme, a ``first``/``last`` value with its event time and id, a
``time_since_*`` time); ``unique_list`` the 100 most recent sightings by ``(event time,
key)``; frequencies the exact per-value counts, the 100 highest ``(count, key)`` past the cap
(what the reducers' ``merge`` keeps); ``approx_count_distinct`` the HyperLogLog registers of
the distinct value keys, built with the stream's own hash (so equal to the stream's sketch).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from signals_stream.aggregations import FREQUENCY_CAP, UNIQUE_LIST_CAP, encode_value, hll
from signals_stream.aggregations.base import timestamp_text
from signals_stream.batch.backfill_sql import StateQuery
from signals_stream.definitions import AttributeGroup
from signals_stream.definitions.attributes import Attribute
from signals_stream.definitions.properties import AtomicProperty
from signals_stream.events.fields import FIELD_NAMES, FIELD_TYPES, FieldType

__all__ = [
    "EntityStates",
    "StatesBuilder",
    "stream_states",
    "value_key",
    "why_not_from_warehouse",
]

_INT_TYPES = frozenset({"int32", "int64"})
_FLOAT_FIELDS = frozenset(
    name for name, kind in zip(FIELD_NAMES, FIELD_TYPES, strict=True) if kind is FieldType.FLOAT
)

# per attribute name: (window state, the latest event time it took)
EntityStates = dict[str, tuple[Any, int | None]]


def why_not_from_warehouse(group: AttributeGroup) -> str | None:
    """Why ``group``'s state cannot come from the warehouse (None: it can)."""
    if not group.attributes:
        return "the group has no attributes"
    if group.attribute_key.source is None:
        return f"attribute_key {group.attribute_key.name!r} reads no property of events"
    return None


def _number(value: Any, attribute: Attribute) -> Any:
    """A SQL number as the stream holds it: ints stay ints for integer attributes."""
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float) and attribute.type in _INT_TYPES and value.is_integer():
        return int(value)
    return value


def _scalar(value: Any, attribute: Attribute) -> Any:
    """A SQL value as the stream's reducers hold it: timestamps as their ISO text."""
    if isinstance(value, datetime):
        return timestamp_text(value)
    return _number(value, attribute)


def _state(attribute: Attribute, parts: Mapping[str, Any]) -> Any:
    agg = attribute.aggregation
    if agg == "counter":
        return int(parts["n"] or 0)
    if agg == "mean":
        n = int(parts["n"] or 0)
        return None if n == 0 or parts["s"] is None else [_number(parts["s"], attribute), n]
    if agg in ("sum", "min", "max"):
        return None if parts["m"] is None else _scalar(parts["m"], attribute)
    if agg in ("time_since_first", "time_since_last"):
        return None if parts["t"] is None else int(parts["t"])
    if parts["t"] is None:  # first / last: [value, event time, event id] as ``_Pick`` keeps
        return None
    return [_scalar(parts["v"], attribute), int(parts["t"]), str(parts["e"])]


def _parts(attribute: Attribute, row: Mapping[str, Any]) -> dict[str, Any]:
    prefix = f"{attribute.name}__"
    return {k.removeprefix(prefix): v for k, v in row.items() if k.startswith(prefix)}


def stream_states(group: AttributeGroup, row: Mapping[str, Any]) -> dict[str, Any]:
    """The lifetime reducers' state per attribute name from one ``entity`` row; attributes
    that took no event are left out."""
    out: dict[str, Any] = {}
    for attribute in group.attributes or ():
        parts = _parts(attribute, row)
        if not parts:
            continue
        state = _state(attribute, parts)
        if state is not None and not (attribute.aggregation == "counter" and state == 0):
            out[attribute.name] = state
    return out


def value_key(kind: str, text: str, attribute: Attribute) -> str:
    """The stream's value key (``encode_value``) of a value the SQL gives as its kind and
    text (``batch.backfill_sql``): a number is an ``int`` unless its text or its atomic
    field says float, as the parser reads it."""
    value: Any
    if kind in ("s", "t"):  # a timestamp's key is its ISO text
        value = text
    elif kind == "b":
        value = text == "true"
    elif kind == "n":
        prop = attribute.property
        floaty = isinstance(prop, AtomicProperty) and prop.name in _FLOAT_FIELDS
        value = float(text) if floaty or any(c in text for c in ".eEnN") else int(text)
    else:
        value = orjson.loads(text)
    return encode_value(value)


def _int(value: Any) -> int:
    return int(value)


def _latest(a: int | None, b: Any) -> int | None:
    if b is None:
        return a
    return int(b) if a is None else max(a, int(b))


class StatesBuilder:
    """Collects the rows of a backfill's queries; :meth:`states` gives each entity's
    :data:`EntityStates`."""

    def __init__(self, group: AttributeGroup) -> None:
        self._group = group
        self._scalar: dict[str, EntityStates] = {}
        # entity -> attribute -> bucket (None: lifetime) -> key -> (count, last seen)
        self._values: dict[str, dict[str, dict[int | None, dict[str, tuple[int, int]]]]] = {}
        self._buckets: dict[str, dict[str, list[list[Any]]]] = {}
        self._latest: dict[tuple[str, str], int | None] = {}

    def _seen(self, entity: str, name: str, at: Any) -> None:
        self._latest[(entity, name)] = _latest(self._latest.get((entity, name)), at)

    def add(self, query: StateQuery, rows: Iterable[Sequence[Any]]) -> None:
        columns = query.columns
        for values in rows:
            row = dict(zip(columns, values, strict=True))
            if query.shape == "entity":
                self._entity(query, row)
            elif query.shape == "buckets":
                self._bucket(query, row)
            else:
                self._value(query, row)

    def _entity(self, query: StateQuery, row: dict[str, Any]) -> None:
        entity = row[self._group.attribute_key.name]
        if entity is None:
            return
        entity = str(entity)
        for attribute in query.attributes:
            parts = _parts(attribute, row)
            state = _state(attribute, parts)
            if state is None or (attribute.aggregation == "counter" and state == 0):
                continue
            self._scalar.setdefault(entity, {})[attribute.name] = (state, None)
            self._seen(entity, attribute.name, parts.get("u"))

    def _bucket(self, query: StateQuery, row: dict[str, Any]) -> None:
        (attribute,) = query.attributes
        entity = str(row["__id"])
        state = _state(attribute, _parts(attribute, row))
        if state is None:
            return
        by_name = self._buckets.setdefault(entity, {})
        by_name.setdefault(attribute.name, []).append([_int(row["__bucket"]), state])
        self._seen(entity, attribute.name, row["__u"])

    def _value(self, query: StateQuery, row: dict[str, Any]) -> None:
        (attribute,) = query.attributes
        entity = str(row["__id"])
        bucket = None if query.period_ms is None else _int(row["__bucket"])
        key = value_key(str(row["__kind"]), str(row["__text"]), attribute)
        per_bucket = self._values.setdefault(entity, {}).setdefault(attribute.name, {})
        counts = per_bucket.setdefault(bucket, {})
        n, seen = counts.get(key, (0, -(1 << 62)))  # a key can come as two texts (1, 1.0)
        counts[key] = (n + int(row["__n"]), max(seen, int(row["__u"])))
        self._seen(entity, attribute.name, row["__u"])

    def states(self) -> dict[str, EntityStates]:
        """Per entity id, each attribute's window state and latest event time."""
        attributes = {a.name: a for a in self._group.attributes or ()}
        out: dict[str, EntityStates] = {}
        for entity, scalars in self._scalar.items():
            for name, (state, _) in scalars.items():
                out.setdefault(entity, {})[name] = (state, self._latest.get((entity, name)))
        for entity, by_name in self._buckets.items():
            for name, buckets in by_name.items():
                buckets.sort(key=lambda bucket: bucket[0])
                out.setdefault(entity, {})[name] = (buckets, self._latest.get((entity, name)))
        for entity, values in self._values.items():
            for name, per_bucket in values.items():
                attribute = attributes[name]
                states = {b: _keyed_state(attribute, counts) for b, counts in per_bucket.items()}
                window: Any = (
                    states[None]
                    if attribute.period is None
                    else [[b, states[b]] for b in sorted(b for b in states if b is not None)]
                )
                out.setdefault(entity, {})[name] = (window, self._latest.get((entity, name)))
        return out


def _keyed_state(attribute: Attribute, counts: dict[str, tuple[int, int]]) -> Any:
    agg = attribute.aggregation
    if agg == "unique_list":  # the 100 most recent sightings, in (seen, key) order
        recent = sorted(((seen, key) for key, (_, seen) in counts.items()))[-UNIQUE_LIST_CAP:]
        return {key: seen for seen, key in recent}
    if agg == "approx_count_distinct":
        sketch: hll.HllState = hll.empty()
        for key in sorted(counts):
            sketch = hll.add_hash(sketch, hll.hash_key(key))
        return sketch
    ranked = sorted(counts.items(), key=lambda item: (-item[1][0], item[0]))[:FREQUENCY_CAP]
    return {key: n for key, (n, _) in ranked}
