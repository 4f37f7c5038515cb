"""Evaluate attributes from an entity row at read time (wall clock ``now_ms``)."""

from __future__ import annotations

from typing import Any

from signals_stream.aggregations import default_for
from signals_stream.engine.catalog import PublishedGroup, ReadableAttribute
from signals_stream.engine.row import EntityRow
from signals_stream.engine.synced import SyncedField, SyncedGroup, read_synced
from signals_stream.engine.windows import expired

__all__ = ["read_attribute", "read_group", "read_value"]


def read_attribute(row: EntityRow | None, attribute: ReadableAttribute, now_ms: int) -> Any:
    """The attribute's value: rolling windows merged over ``[now - period, now]``,
    ``time_since_*`` against ``now``, and null/default when absent or past its TTL."""
    value = None
    entry = None if row is None else row.attrs.get(attribute.slot.id)
    if (
        row is not None
        and entry is not None
        and not expired(entry[1], attribute.ttl_ms, now_ms)
        and not attribute.slot.stale(entry[1], row.backfills)
    ):
        value = attribute.slot.window.read(entry[0], now_ms, attribute.time_unit)
    if value is None:
        if attribute.has_default:
            return attribute.default_value
        compiled = attribute.slot.attribute
        return default_for(compiled.aggregation, compiled.type)
    return value


def read_value(
    row: EntityRow | None, attribute: ReadableAttribute | SyncedField, now_ms: int
) -> Any:
    """A stream attribute (:func:`read_attribute`) or a warehouse group's synced field."""
    if isinstance(attribute, SyncedField):
        return read_synced(row, attribute, now_ms)
    return read_attribute(row, attribute, now_ms)


def read_group(
    row: EntityRow | None, group: PublishedGroup | SyncedGroup, now_ms: int
) -> dict[str, Any]:
    """Every attribute (or synced field) of ``group``, by name."""
    if isinstance(group, SyncedGroup):
        return {f.name: read_synced(row, f, now_ms) for f in group.fields}
    return {a.name: read_attribute(row, a, now_ms) for a in group.attributes}
