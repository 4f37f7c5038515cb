"""Entity rows: the one state record per entity (one value of one attribute key).

Stored as the value of the entity-state table (RocksDB + compacted changelog), keyed by
``routing.entity_row_key``. Byte layout: one orjson object ::

    {"v": 1,                       row format version
     "n": 17,                      events applied
     "first_ms": ..., "last_ms": ...,   smallest / largest event time applied (epoch ms)
     "updated_ms": ...,            wall clock of the last update (for TTL sweeps)
     "off": {"<partition>": 4711}, last applied input offset per input partition
     "a": {"<slot id>": [state, updated_ms]},   attribute states (engine.catalog.Slot)
     "ids": ["<event id>", ...],   recent event ids, only with SIGNALS_DEDUPE_EVENT_IDS
     "f": ["<rule>:<version>", ...],   rules whose criteria held at the last update
     "el": {"<event log>": [state id, entries]}}   agentic-context buffers (engine.event_buffer)
     "w": {"<group>:<version>": [{field: value}, source_ms]}}   warehouse groups' synced
                                   values and their row's timestamp_field (engine.synced)
     "bf": {"<backfill id>": {"<partition>": {"b": offset, "l": offset}}}   where the backfill
                                   and live roads of a backfilled slot meet (engine.backfill)

``off`` makes updates idempotent under at-least-once delivery: every event carries the input
partition and offset it was read from (``routing``), the row and its offsets travel in the same
changelog record, and an event at or below ``off`` for its partition is skipped -- whether the
input was re-read by the ingest agent or the entity-events topic by the entity agent after a
crash, nothing is counted twice. Events of one input partition reach an entity in input order.
Changing the input topic needs a new app id (fresh state), since offsets are per partition.

A slot id is the attribute's definition hash plus its stored layout version, so identical
definitions share a state; a slot's ``updated_ms`` is the wall clock of its last update,
against which TTLs are measured.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from signals_stream.errors import StateError
from signals_stream.events.parse import Event

__all__ = ["ROW_VERSION", "EntityRow", "decode_row", "encode_row"]

ROW_VERSION = 1


class EntityRow:
    """Mutable, in-memory form of one entity row."""

    __slots__ = (
        "attrs",
        "backfills",
        "events",
        "first_ms",
        "last_ms",
        "fired",
        "logs",
        "offsets",
        "recent_ids",
        "synced",
        "updated_ms",
    )

    def __init__(self) -> None:
        self.events = 0
        self.first_ms: int | None = None
        self.last_ms: int | None = None
        self.updated_ms: int | None = None
        self.offsets: dict[str, int] = {}
        self.attrs: dict[str, list[Any]] = {}
        self.recent_ids: list[str] = []
        self.fired: list[str] = []
        self.logs: dict[str, list[Any]] = {}
        self.synced: dict[str, list[Any]] = {}
        self.backfills: dict[str, dict[str, dict[str, int]]] = {}

    def already_applied(self, partition: int, offset: int) -> bool:
        return offset <= self.offsets.get(str(partition), -1)

    def mark_applied(self, partition: int, offset: int) -> None:
        self.offsets[str(partition)] = offset

    def record_events(self, events: Iterable[Event], *, now_ms: int) -> None:
        """Count applied events and track their event-time span."""
        for event in events:
            self.events += 1
            t = event.event_time_ms
            self.first_ms = t if self.first_ms is None else min(self.first_ms, t)
            self.last_ms = t if self.last_ms is None else max(self.last_ms, t)
        self.updated_ms = now_ms

    def to_json(self) -> dict[str, object]:
        return {
            "events": self.events,
            "first_event_ms": self.first_ms,
            "last_event_ms": self.last_ms,
            "updated_ms": self.updated_ms,
        }


def encode_row(row: EntityRow) -> bytes:
    return orjson.dumps(
        {
            "v": ROW_VERSION,
            "n": row.events,
            "first_ms": row.first_ms,
            "last_ms": row.last_ms,
            "updated_ms": row.updated_ms,
            "off": row.offsets,
            "a": row.attrs,
            **({"ids": row.recent_ids} if row.recent_ids else {}),
            **({"f": row.fired} if row.fired else {}),
            **({"el": row.logs} if row.logs else {}),
            **({"w": row.synced} if row.synced else {}),
            **({"bf": row.backfills} if row.backfills else {}),
        }
    )


def decode_row(raw: bytes | None) -> EntityRow:
    """Decode a stored row; ``None`` (no row yet) gives an empty row.

    Raises:
        StateError: the bytes are not a row of a version we know.
    """
    row = EntityRow()
    if raw is None:
        return row
    try:
        data = orjson.loads(raw)
        if data.get("v") != ROW_VERSION:
            raise StateError(f"unknown entity row version {data.get('v')!r}")
        row.events = int(data["n"])
        row.first_ms = data["first_ms"]
        row.last_ms = data["last_ms"]
        row.updated_ms = data["updated_ms"]
        row.offsets = {str(k): int(v) for k, v in data["off"].items()}
        row.attrs = data.get("a") or {}
        row.recent_ids = data.get("ids") or []
        row.fired = data.get("f") or []
        row.logs = data.get("el") or {}
        row.synced = data.get("w") or {}
        row.backfills = data.get("bf") or {}
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError) as exc:
        raise StateError(f"undecodable entity row: {exc}") from exc
    return row
