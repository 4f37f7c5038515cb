"""``definition_hash``: one stored state per distinct computation, shared across groups.

Signals deduplicates attribute state by a content hash of the definition, so identical
attributes in two groups, or in two versions of one group, share one state. The hash covers
exactly what changes the stored state:

- the attribute key: its name and the canonical source of its value;
- ``aggregation`` and ``type`` (reducers may coerce values to the type when they store them);
- ``property`` with paths canonicalized (``price`` = ``$.price``) and defaults filled in, or
  nothing for ``counter`` (which ignores it) and the implicit ``derived_tstamp`` of
  ``time_since_*`` (stated or not);
- ``events`` as a set (order and duplicates do not matter; ``[]`` = every event);
- ``criteria`` with each block as a set, empty blocks dropped, ``in`` lists as sets;
- ``period`` in milliseconds (``PT1H`` = ``PT60M``), or lifetime.

Left out, because they only shape reads: ``name``, ``description``, ``default_value``,
``time_unit`` (``time_since_*`` is computed at read time from the stored timestamp) and
``ttl`` (expiry is applied per reader; the state lives as long as its longest reader).
The owner, group name and version never reach the attribute. :data:`HASH_VERSION` is hashed
too, so a change of this canonical form cannot silently alias old states.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from signals_stream.definitions.attributes import Attribute
from signals_stream.definitions.criteria import Criteria, Criterion
from signals_stream.definitions.durations import duration_ms
from signals_stream.definitions.keys import AttributeKey
from signals_stream.definitions.paths import compile_path, format_path
from signals_stream.definitions.properties import AtomicProperty, CalculatedProperty
from signals_stream.events.fields import FIELD_ALIASES

__all__ = ["HASH_VERSION", "canonical_definition", "definition_hash"]

HASH_VERSION = 1


def _canonical_property(prop: Any) -> Any:
    if prop is None:
        return None
    if isinstance(prop, CalculatedProperty):
        return {
            "type": "calculated",
            "operation": prop.operation,
            "separator": (prop.separator or "") if prop.operation == "concat" else None,
            # Order matters: concat and coalesce are order-sensitive.
            "properties": [_canonical_property(leaf) for leaf in prop.properties],
        }
    data = prop.model_dump(mode="json")
    if data["type"] == "atomic":
        data["name"] = FIELD_ALIASES.get(data["name"], data["name"])
    if "path" in data:
        data["path"] = format_path(compile_path(data["path"]))
    return data


def _sorted_unique(items: list[Any]) -> list[Any]:
    encoded = sorted({orjson.dumps(item, option=orjson.OPT_SORT_KEYS) for item in items})
    return [orjson.loads(raw) for raw in encoded]


def _canonical_criterion(criterion: Criterion) -> dict[str, Any]:
    value: Any = criterion.value
    if criterion.operator == "in":
        value = _sorted_unique(list(value))
    elif isinstance(value, tuple):
        value = list(value)
    return {
        "property": _canonical_property(criterion.property),
        "operator": criterion.operator,
        "value": value,
    }


def _canonical_criteria(criteria: Criteria | None) -> dict[str, Any] | None:
    if criteria is None:
        return None
    blocks = {
        name: _sorted_unique([_canonical_criterion(c) for c in block])
        for name, block in (("all", criteria.all), ("any", criteria.any))
        if block
    }
    return blocks or None


def _canonical_key(key: AttributeKey) -> dict[str, Any]:
    source = key.source
    return {
        "name": key.name,
        "source": _canonical_property(source) if source is not None else None,
    }


def _canonical_events(attribute: Attribute) -> list[Any]:
    selectors = [e.model_dump(mode="json", exclude_none=True) for e in attribute.events]
    if any(not selector for selector in selectors):
        return []  # a selector without fields matches everything, like no selectors
    return _sorted_unique(selectors)


def canonical_definition(attribute: Attribute, key: AttributeKey) -> dict[str, Any]:
    """The JSON-able document :func:`definition_hash` hashes (for debugging and tests)."""
    if attribute.aggregation == "counter" or attribute.aggregation.startswith("time_since_"):
        prop = None
        if attribute.aggregation != "counter":
            prop = _canonical_property(AtomicProperty(name="derived_tstamp"))
    else:
        prop = _canonical_property(attribute.property)
    return {
        "v": HASH_VERSION,
        "key": _canonical_key(key),
        "aggregation": attribute.aggregation,
        "type": attribute.type,
        "property": prop,
        "events": _canonical_events(attribute),
        "criteria": _canonical_criteria(attribute.criteria),
        "period_ms": None if attribute.period is None else duration_ms(attribute.period),
    }


def definition_hash(attribute: Attribute, key: AttributeKey) -> str:
    """Stable hash of everything that affects an attribute's computed state.

    Args:
        attribute: the attribute definition.
        key: the attribute key of its group.

    Returns:
        32 lowercase hex characters (128 bits of SHA-256), stable across processes and versions
        of Python.
    """
    document = orjson.dumps(canonical_definition(attribute, key), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(document).hexdigest()[:32]
