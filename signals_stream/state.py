"""Entity rows: the one state record per entity (one value of one attribute key).

Stored as the value of the entity-state table (RocksDB + compacted changelog), keyed by
``routing.entity_row_key``. Byte layout: one orjson object ::

    {"v": 1,                       row format version
     "n": 17,                      events applied
     "first_ms": ..., "last_ms": ...,   smallest / largest event time applied (epoch ms)
     "updated_ms": ...,            wall clock of the last update (for TTL sweeps)
     "off": {"<topic>": 4711},     last applied offset per source topic
     "a": {"<slot id>": [state, updated_ms]}}   attribute states (engine.catalog.Slot)

``off`` makes updates idempotent under at-least-once delivery: the row and the offset travel in
the same changelog record, so after a crash a replayed record at or below ``off`` is skipped and
nothing is counted twice. A slot id is the attribute's definition hash plus its stored layout
version, so identical definitions share a state; ``updated_ms`` is the wall clock of the slot's
last update, against which TTLs are measured.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from signals_stream.errors import StateError
from signals_stream.events import Event

__all__ = ["ROW_VERSION", "EntityRow", "decode_row", "encode_row"]

ROW_VERSION = 1


class EntityRow:
    """Mutable, in-memory form of one entity row."""

    __slots__ = ("attrs", "events", "first_ms", "last_ms", "offsets", "updated_ms")

    def __init__(self) -> None:
        self.events = 0
        self.first_ms: int | None = None
        self.last_ms: int | None = None
        self.updated_ms: int | None = None
        self.offsets: dict[str, int] = {}
        self.attrs: dict[str, list[Any]] = {}

    def already_applied(self, topic: str, offset: int) -> bool:
        return offset <= self.offsets.get(topic, -1)

    def record_applied(
        self, events: Iterable[Event], *, topic: str, offset: int, now_ms: int
    ) -> None:
        """Count the events of one source record and remember its offset."""
        for event in events:
            self.events += 1
            t = event.event_time_ms
            self.first_ms = t if self.first_ms is None else min(self.first_ms, t)
            self.last_ms = t if self.last_ms is None else max(self.last_ms, t)
        self.offsets[topic] = offset
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
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError) as exc:
        raise StateError(f"undecodable entity row: {exc}") from exc
    return row
