"""Evaluate attributes from an entity row at read time (wall clock ``now_ms``)."""

from __future__ import annotations

from typing import Any

from signals_stream.aggregations import default_for
from signals_stream.engine.catalog import PublishedGroup, ReadableAttribute
from signals_stream.engine.row import EntityRow
from signals_stream.engine.windows import expired

__all__ = ["read_attribute", "read_group"]


def read_attribute(row: EntityRow | None, attribute: ReadableAttribute, now_ms: int) -> Any:
    """The attribute's value: rolling windows merged over ``[now - period, now]``,
    ``time_since_*`` against ``now``, and null/default when absent or past its TTL."""
    value = None
    entry = None if row is None else row.attrs.get(attribute.slot.id)
    if (
        entry is not None
        and not expired(entry[1], attribute.ttl_ms, now_ms)
        and not attribute.slot.stale(entry[1])
    ):
        value = attribute.slot.window.read(entry[0], now_ms, attribute.time_unit)
    if value is None:
        if attribute.has_default:
            return attribute.default_value
        compiled = attribute.slot.attribute
        return default_for(compiled.aggregation, compiled.type)
    return value


def read_group(row: EntityRow | None, group: PublishedGroup, now_ms: int) -> dict[str, Any]:
    """Every attribute of ``group``, by name."""
    return {a.name: read_attribute(row, a, now_ms) for a in group.attributes}
