"""Warehouse states merged into entity rows: the warehouse part of a backfill (pure).

The backfill's coordinator (``agents/warehouse_backfill``) computes in the warehouse, per
entity, the reducer states of a group's attributes over the events collected before the cut
(``batch.backfill_states``) and sends them on the entity-events topic to each entity's
partition, as records ``MAGIC`` + orjson ``{"b": backfill id, "i": [[key name, entity id,
{slot id: state}], ...]}``. The entities agent merges each item into the row's backfilled
slots with the reducers' ``merge`` (order-independent: live events and the log's backfill
events may have been folded already), once: the row keeps ``bf[<backfill id>]["w"]`` and a
resent record (the coordinator restarted) is skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import orjson

from signals_stream.engine.catalog import Backfill
from signals_stream.engine.row import EntityRow
from signals_stream.engine.synced import pack_records
from signals_stream.engine.windows import LifetimeWindow, expired

__all__ = [
    "MAGIC",
    "WarehouseStates",
    "decode_states_record",
    "encode_states_records",
    "merge_warehouse_states",
]

# An entity-events record starts with a key name, never with NUL (as ``engine.synced``).
MAGIC = b"\x00whbf1\n"
_DONE_MARK = "w"  # in row.backfills[<id>]: the warehouse states are merged


class WarehouseStates(NamedTuple):
    """One entity's warehouse states for one backfill."""

    key_name: str
    entity_id: bytes
    states: dict[str, Any]  # slot id -> reducer state


def encode_states_records(
    backfill_id: str, items: Iterable[WarehouseStates], max_bytes: int
) -> list[bytes]:
    """Items as records of about ``max_bytes`` at most (a larger item alone)."""
    parts = (orjson.dumps([key, entity_id.decode(), states]) for key, entity_id, states in items)
    return pack_records(MAGIC + orjson.dumps(backfill_id) + b"\n", parts, max_bytes)


def decode_states_record(raw: bytes) -> tuple[str, list[WarehouseStates]] | None:
    """The backfill id and items of a states record; None when ``raw`` is not one.

    Raises:
        ValueError: it starts like one but does not decode.
    """
    if not raw.startswith(MAGIC):
        return None
    head, sep, body = raw[len(MAGIC) :].partition(b"\n")
    try:
        backfill_id = orjson.loads(head)
        items = orjson.loads(body) if sep else None
        if type(backfill_id) is not str or type(items) is not list:
            raise ValueError("not a backfill id and a list of items")
        out = []
        for key_name, entity_id, states in items:
            if type(key_name) is not str or type(entity_id) is not str or type(states) is not dict:
                raise ValueError("an item is not [key name, entity id, {slot id: state}]")
            out.append(WarehouseStates(key_name, entity_id.encode(), states))
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise ValueError(f"undecodable warehouse states record: {exc}") from exc
    return backfill_id, out


def merge_warehouse_states(
    row: EntityRow, backfill: Backfill, states: dict[str, Any], now_ms: int
) -> bool:
    """Merge one entity's warehouse states into its backfilled slots (lifetime windows: the
    only ones the warehouse part fills); False when the row had them already."""
    marks = row.backfills.setdefault(backfill.id, {})
    if _DONE_MARK in marks:
        return False
    marks[_DONE_MARK] = {"done": 1}
    for slot in backfill.program.slots:
        state = states.get(slot.id)
        window = slot.window
        if state is None or not isinstance(window, LifetimeWindow):
            continue
        entry = row.attrs.get(slot.id)
        if entry is None or expired(entry[1], slot.retention_ms, now_ms) or slot.stale(entry[1]):
            current = window.initial()
        else:
            current = entry[0]
        row.attrs[slot.id] = [window.reducer.merge(current, state), now_ms]
    return True
