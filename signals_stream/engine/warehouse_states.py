"""Warehouse states merged into entity rows: the warehouse part of a backfill (pure).

The backfill's coordinator (``agents/warehouse_backfill``) computes in the warehouse, per
entity, the window states of a group's attributes over the events collected before the cut
(``batch.backfill_states``) and sends them on the entity-events topic to each entity's
partition, as records ``MAGIC`` + orjson ``{"b": backfill id, "i": [[key name, entity id,
{slot id: state}, {slot id: latest event time}], ...]}``. The entities agent merges each item
into the row's backfilled slots with the windows' ``merge`` (order-independent: live events
and the log's backfill events may have been folded already), once: the row keeps
``bf[<backfill id>]["w"]`` and a resent record (the coordinator restarted) is skipped.

**TTLs.** A TTL'd slot's state is judged on event time, as the log backfill folds it: the SQL
restarted it after every gap of a TTL, and its update time is the latest event time it took
(``L``). The merge treats the warehouse state as one event at ``L``: into a slot whose update
time is a TTL or more before ``L`` it replaces the state (the older one expired), otherwise
it merges, and the update time is the later of the two. The log tasks of a backfill with a
TTL start only once the warehouse part is done (``agents/warehouse_backfill``), so the log's
events fold after it, on event time, and restart it where a gap says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import orjson

from signals_stream.engine.catalog import Backfill
from signals_stream.engine.row import EntityRow
from signals_stream.engine.synced import pack_records

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
    states: dict[str, Any]  # slot id -> window state
    updated: dict[str, int] = {}  # slot id -> the latest event time it took


def encode_states_records(
    backfill_id: str, items: Iterable[WarehouseStates], max_bytes: int
) -> list[bytes]:
    """Items as records of about ``max_bytes`` at most (a larger item alone)."""
    parts = (
        orjson.dumps([key, entity_id.decode(), states, updated])
        for key, entity_id, states, updated in items
    )
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
        for item in items:
            key_name, entity_id, states, *rest = item
            updated = rest[0] if rest else {}
            if (
                type(key_name) is not str
                or type(entity_id) is not str
                or type(states) is not dict
                or type(updated) is not dict
            ):
                raise ValueError("an item is not [key name, entity id, {slot id: state}, {...}]")
            out.append(WarehouseStates(key_name, entity_id.encode(), states, updated))
    except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
        raise ValueError(f"undecodable warehouse states record: {exc}") from exc
    return backfill_id, out


def merge_warehouse_states(
    row: EntityRow,
    backfill: Backfill,
    states: dict[str, Any],
    now_ms: int,
    updated: Mapping[str, int] | None = None,
) -> bool:
    """Merge one entity's warehouse states into its backfilled slots (``updated``: each
    slot's latest event time, else ``now_ms``); False when the row had them already."""
    first = backfill.id not in row.backfills
    marks = row.backfills.setdefault(backfill.id, {})
    if _DONE_MARK in marks:
        return False
    marks[_DONE_MARK] = {"done": 1}
    if first:  # the first of the backfill's roads to reach the row: earlier state is stale
        for slot_id in backfill.slot_ids:
            row.attrs.pop(slot_id, None)
    times = updated or {}
    for slot in backfill.program.slots:
        state = states.get(slot.id)
        if state is None:
            continue
        retention = slot.retention_ms
        at_ms = times.get(slot.id, now_ms)  # a reader's TTL counts from it, shared or not
        entry = row.attrs.get(slot.id)
        if entry is None or (retention is not None and at_ms - entry[1] >= retention):
            current, updated_ms = slot.window.initial(), at_ms
        else:
            current, updated_ms = entry[0], max(entry[1], at_ms)
        row.attrs[slot.id] = [slot.window.merge(current, state), updated_ms]
    return True
