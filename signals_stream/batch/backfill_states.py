"""A stream group's reducer states from the warehouse, up to a cut-over (pure).

The warehouse part of a backfill (``docs/semantics.md`` "Backfill from the warehouse"): the
batch compiler's state query (``batch.incremental``, the same SQL ``batch run`` keeps its
incremental states with) over the events collected in ``[since, cut)``, one row per entity
with each attribute's partial state; :func:`stream_states` turns such a row into the states
the stream's reducers keep (``aggregations``), which the entity rows then merge with the
reducers' own ``merge`` (``engine.warehouse_states``).

Only groups whose attributes have such a state can be filled this way (lifetime ``counter``,
``sum``, ``mean``, ``min``, ``max``, ``first``, ``last``, ``time_since_*`` without TTL:
:func:`why_not_from_warehouse`); the others are filled from the log only.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from signals_stream.aggregations.base import timestamp_text
from signals_stream.batch.compile import EventsTable, compile_state
from signals_stream.batch.dialects import DialectName
from signals_stream.batch.incremental import not_incremental
from signals_stream.definitions import AttributeGroup
from signals_stream.definitions.attributes import Attribute

__all__ = ["states_sql", "stream_states", "why_not_from_warehouse"]

_INT_TYPES = frozenset({"int32", "int64"})


def why_not_from_warehouse(group: AttributeGroup) -> str | None:
    """Why ``group``'s state cannot come from the warehouse (None: it can)."""
    return not_incremental(group)


def states_sql(
    group: AttributeGroup, table: EventsTable, *, dialect: DialectName, since_ms: int, cut_ms: int
) -> tuple[str, list[str]]:
    """Per entity, the reducer states over the events with ``since_ms <= collector_tstamp <
    cut_ms``: the SQL and its columns (the key, then ``<attribute>__<part>`` s)."""
    query = compile_state(group, table, dialect=dialect, collected=(since_ms, cut_ms))
    return query.sql(dialect=dialect), [select.alias_or_name for select in query.selects]


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


def stream_states(group: AttributeGroup, row: Mapping[str, Any]) -> dict[str, Any]:
    """The stream reducers' state per attribute name from one row of :func:`states_sql`;
    attributes that took no event are left out."""
    out: dict[str, Any] = {}
    for attribute in group.attributes or ():
        prefix = f"{attribute.name}__"
        parts = {k.removeprefix(prefix): v for k, v in row.items() if k.startswith(prefix)}
        state = _state(attribute, parts)
        if state is not None and not (attribute.aggregation == "counter" and state == 0):
            out[attribute.name] = state
    return out
