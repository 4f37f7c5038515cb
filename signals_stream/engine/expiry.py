"""When a whole entity row can go: nothing in it is alive and it has been idle long enough.

A row outlives its attribute states by the key program's longest finite retention (or
:data:`DEFAULT_IDLE_MS` when no slot has one), so the row's input offsets still guard against
replays for as long as any state could have been updated. Rows of keys no published definition
uses any more follow the same default.
"""

from __future__ import annotations

from collections.abc import Mapping

from signals_stream.engine.catalog import KeyProgram
from signals_stream.engine.row import EntityRow
from signals_stream.engine.synced import synced_expires_at_ms
from signals_stream.engine.windows import expired

__all__ = ["DEFAULT_IDLE_MS", "row_expired", "row_expires_at_ms"]

DEFAULT_IDLE_MS = 7 * 24 * 3600 * 1000  # Signals' recommended TTL for stream groups


def row_expired(
    row: EntityRow,
    program: KeyProgram | None,
    now_ms: int,
    synced_ttls: Mapping[str, int] | None = None,
) -> bool:
    """True when ``row`` holds no live attribute state nor live synced value of a published
    warehouse group (``synced_ttls``: ``Catalog.synced_ttls``), and was last updated at least
    the idle period ago."""
    synced_end = synced_expires_at_ms(row, dict(synced_ttls or {}))
    if synced_end is not None and synced_end > now_ms:
        return False
    live = {} if program is None else {slot.id: slot for slot in program.slots}
    for sid, (_, updated_ms) in row.attrs.items():
        slot = live.get(sid)
        if (
            slot is not None
            and not expired(updated_ms, slot.retention_ms, now_ms)
            and not slot.stale(updated_ms, row.backfills)
        ):
            return False
    finite = [s.retention_ms for s in live.values() if s.retention_ms is not None]
    idle_ms = max(finite) if finite else DEFAULT_IDLE_MS
    return expired(row.updated_ms, idle_ms, now_ms)


def row_expires_at_ms(
    row: EntityRow, program: KeyProgram | None, synced_ttls: Mapping[str, int] | None = None
) -> int | None:
    """The wall clock from which :func:`row_expired` holds for ``row``, or None when it never
    will (a live state without a TTL, or a row never updated). Copies of the row elsewhere
    (the Redis profiles store) expire at the same instant as the row in the table."""
    live = {} if program is None else {slot.id: slot for slot in program.slots}
    ends: list[int] = []
    for sid, (_, updated_ms) in row.attrs.items():
        slot = live.get(sid)
        if slot is None or slot.stale(updated_ms, row.backfills):
            continue
        if slot.retention_ms is None or updated_ms is None:
            return None
        ends.append(updated_ms + slot.retention_ms)
    synced_end = synced_expires_at_ms(row, dict(synced_ttls or {}))
    if synced_end is not None:
        ends.append(synced_end)
    if row.updated_ms is None:
        return None
    finite = [s.retention_ms for s in live.values() if s.retention_ms is not None]
    ends.append(row.updated_ms + (max(finite) if finite else DEFAULT_IDLE_MS))
    return max(ends)
