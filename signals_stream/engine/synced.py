"""Warehouse groups' values in the entity rows: how they travel and how they are read. Pure.

A sync run sends its rows as *sync records* on the entity-events topic, each to the partition
its entity id hashes to (the one owning that entity's row), so the entities agent writes them
into the same row as the stream attributes: same RocksDB table, same compacted changelog, same
Redis copy, the same owner for reads. A record is ``MAGIC`` then an orjson list of items
``[key name, entity id, "<group>:<version>" | null, source_ms, {field: value} | null]``.

Applying is idempotent and order-safe: a group's values are replaced only by values whose
warehouse timestamp (``timestamp_field``) is not older than the stored one, so a re-sent chunk
(a crash before the watermark was committed) changes nothing. Values ``null`` delete that
group's values; a group ``null`` deletes every synced value of the entity (user deletion).

TTL: a synced value lives for the group's TTL (365 days by default) from its warehouse
timestamp, i.e. from when the warehouse last updated it; past it, reads answer null.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from signals_stream.definitions import AttributeGroup
from signals_stream.definitions.durations import duration_ms
from signals_stream.engine.row import EntityRow
from signals_stream.engine.windows import expired

__all__ = [
    "MAGIC",
    "SyncItem",
    "SyncedField",
    "SyncedGroup",
    "apply_synced",
    "decode_sync_record",
    "encode_sync_records",
    "pack_records",
    "group_id",
    "read_synced",
    "synced_expires_at_ms",
]

MAGIC = b"\x00sync1\n"  # an entity-events record starts with a key name, never with NUL


def group_id(name: str, version: int) -> str:
    return f"{name}:{version}"


class SyncItem(NamedTuple):
    """One entity's values of one warehouse group (or a deletion)."""

    key_name: str
    entity_id: bytes
    group: str | None  # ``group_id``; None: every group (delete only)
    source_ms: int
    values: dict[str, Any] | None  # None: delete


@dataclass(frozen=True, slots=True)
class SyncedField:
    """One field of a published warehouse group, as read."""

    name: str
    group: str
    ttl_ms: int


@dataclass(frozen=True, slots=True)
class SyncedGroup:
    """A published warehouse group version: external batch, or batch (computed by
    ``signals-stream batch run``)."""

    definition: AttributeGroup
    fields: tuple[SyncedField, ...]

    @classmethod
    def of(cls, group: AttributeGroup) -> SyncedGroup:
        gid = group_id(group.name, group.version)
        ttl = duration_ms(group.warehouse_ttl)  # never None: 365 days by default
        # An external batch group's fields; a batch group's attributes (``batch run`` computes
        # them into a table the sync reads like an external group's).
        names = [f.name for f in group.fields or group.attributes or ()]
        return cls(group, tuple(SyncedField(name, gid, ttl) for name in names))

    @property
    def key_name(self) -> str:
        return self.definition.attribute_key.name

    @property
    def attribute_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def attribute(self, name: str) -> SyncedField:
        for field in self.fields:
            if field.name == name:
                return field
        raise KeyError(name)


def pack_records(head: bytes, parts: Iterable[bytes], max_bytes: int) -> list[bytes]:
    """JSON ``parts`` as records ``head`` + ``[part,...]`` of about ``max_bytes`` at most (a
    larger part alone), in order."""
    records: list[bytes] = []
    chunk: list[bytes] = []
    size = 0
    for part in parts:
        if chunk and size + len(part) + 1 > max_bytes:
            records.append(head + b"[" + b",".join(chunk) + b"]")
            chunk, size = [], 0
        chunk.append(part)
        size += len(part) + 1
    if chunk:
        records.append(head + b"[" + b",".join(chunk) + b"]")
    return records


def encode_sync_records(items: Iterable[SyncItem], max_bytes: int) -> list[bytes]:
    """Items as records of about ``max_bytes`` at most (a larger item alone), in order."""
    parts = (
        orjson.dumps([key_name, entity_id.decode(), group, source_ms, values])
        for key_name, entity_id, group, source_ms, values in items
    )
    return pack_records(MAGIC, parts, max_bytes)


def decode_sync_record(raw: bytes) -> list[SyncItem] | None:
    """The items of a sync record; None when ``raw`` is not one (an entity-events record).

    Raises:
        ValueError: a sync record that cannot be read.
    """
    if not raw.startswith(MAGIC):
        return None
    try:
        return [
            SyncItem(str(k), str(i).encode(), g, int(t), v)
            for k, i, g, t, v in orjson.loads(raw[len(MAGIC) :])
        ]
    except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
        raise ValueError(f"undecodable sync record: {exc}") from exc


def apply_synced(row: EntityRow, items: Iterable[SyncItem], now_ms: int) -> int:
    """Apply one entity's items to its row; how many changed it."""
    changed = 0
    for item in items:
        if item.group is None:
            changed += bool(row.synced)
            row.synced = {}
            continue
        stored = row.synced.get(item.group)
        if stored is not None and int(stored[1]) > item.source_ms:
            continue  # the row holds newer warehouse values
        if item.values is None:
            changed += row.synced.pop(item.group, None) is not None
            continue
        row.synced[item.group] = [item.values, item.source_ms]
        changed += 1
    if changed:
        row.updated_ms = now_ms
    return changed


def read_synced(row: EntityRow | None, field: SyncedField, now_ms: int) -> Any:
    """A synced value; null when absent or past the group's TTL from its warehouse time."""
    entry = None if row is None else row.synced.get(field.group)
    if entry is None or expired(int(entry[1]), field.ttl_ms, now_ms):
        return None
    return entry[0].get(field.name)


def synced_expires_at_ms(row: EntityRow, ttls: dict[str, int]) -> int | None:
    """When the last of ``row``'s published synced values expires (None: it holds none)."""
    ends = [int(source_ms) + ttls[gid] for gid, (_, source_ms) in row.synced.items() if gid in ttls]
    return max(ends) if ends else None
