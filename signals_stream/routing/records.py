"""The entity-events record: every entity event of one ingest batch bound for one partition.

One record carries all the events of one ingest batch that go to one partition, so a batch
costs a handful of records instead of one per entity. Each item of a record::

    <key name> SP <id length> SP <input partition> SP <input offset> SP <projection length> LF
    <entity id bytes><projection bytes>

Length-prefixed, so ids may contain any byte.
"""

from __future__ import annotations

from collections.abc import Iterable

from signals_stream.routing.plan import EntityEvent

__all__ = ["decode_entity_events", "encode_entity_event_records", "encode_entity_events"]


def _item_header(key_name: str, entity_id: bytes, partition: int, offset: int, size: int) -> bytes:
    return b"%s %d %d %d %d\n" % (key_name.encode(), len(entity_id), partition, offset, size)


def encode_entity_events(events: Iterable[EntityEvent]) -> bytes:
    parts: list[bytes] = []
    for key_name, entity_id, partition, offset, projection in events:
        parts += (_item_header(key_name, entity_id, partition, offset, len(projection)), entity_id)
        parts.append(projection)
    return b"".join(parts)


def encode_entity_event_records(events: Iterable[EntityEvent], max_bytes: int) -> list[bytes]:
    """Like :func:`encode_entity_events`, split into records of at most ``max_bytes`` each
    (an item larger than that alone), in order: a whole poll for one partition may exceed
    what the broker takes in one record."""
    records: list[bytes] = []
    parts: list[bytes] = []
    size = 0
    for key_name, entity_id, partition, offset, projection in events:
        header = _item_header(key_name, entity_id, partition, offset, len(projection))
        item_size = len(header) + len(entity_id) + len(projection)
        if parts and size + item_size > max_bytes:
            records.append(b"".join(parts))
            parts, size = [], 0
        parts += (header, entity_id, projection)
        size += item_size
    if parts:
        records.append(b"".join(parts))
    return records


def decode_entity_events(raw: bytes) -> list[EntityEvent]:
    """Inverse of :func:`encode_entity_events`.

    Raises:
        ValueError: the record is not an entity-events record.
    """
    events: list[EntityEvent] = []
    position, size = 0, len(raw)
    while position < size:
        line_end = raw.index(b"\n", position)
        name, id_len, partition, offset, proj_len = raw[position:line_end].split(b" ")
        id_end = line_end + 1 + int(id_len)
        end = id_end + int(proj_len)
        if end > size:
            raise ValueError("truncated entity-events record")
        events.append(
            EntityEvent(
                name.decode(),
                raw[line_end + 1 : id_end],
                int(partition),
                int(offset),
                raw[id_end:end],
            )
        )
        position = end
    return events
