"""Re-keying: from one parsed event to the entity-events records, by entity partition.

Enrich keys records by a random UUID, so events of one user are spread over every partition.
Before any per-entity state is touched, each event is forwarded once per attribute key it
carries, to the entity-events partition its entity id hashes to (the producer's partitioner on
the raw id bytes: the same hash Faust's router uses for table lookups). One record carries all
the events of one ingest batch that go to one partition, so a batch costs a handful of records
instead of one per entity. Each item of a record::

    <key name> SP <id length> SP <input partition> SP <input offset> SP <projection length> LF
    <entity id bytes><projection bytes>

Length-prefixed, so ids may contain any byte. The projection is the compact orjson form of the
event (``Event.project``) holding only what the published definitions need; the input
partition and offset it was read from make applying it idempotent, however often the ingest
and entity stages are re-run after a crash.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from signals_stream.events.parse import Event, Projection

__all__ = [
    "BUILTIN_KEYS",
    "KeyRoute",
    "RoutingPlan",
    "builtin_key",
    "EntityEvent",
    "decode_entity_events",
    "encode_entity_events",
    "encode_entity_event_records",
    "entity_projections",
    "entity_row_key",
    "route_event",
    "split_row_key",
]

BUILTIN_KEYS = ("domain_userid", "domain_sessionid", "network_userid", "user_id")
# Unit separator: cannot appear in a key name (validated) and keeps row keys human-readable.
_ROW_KEY_SEP = b"\x1f"
_MAX_ID_BYTES = 1024  # Snowplow ids are <= 255 chars; longer values are not identifiers.


@dataclass(frozen=True, slots=True)
class KeyRoute:
    """One attribute key in use: its name and how to read its value from an event."""

    name: str
    value_of: Callable[[Event], object]


@dataclass(frozen=True, slots=True)
class RoutingPlan:
    """Which entities an event is forwarded to, and what of it travels."""

    keys: tuple[KeyRoute, ...]
    projection: Projection


def builtin_key(name: str) -> KeyRoute:
    """A key whose value is the atomic field of the same name (``domain_userid``...)."""
    return KeyRoute(name=name, value_of=lambda event: event.atomic(name))


def entity_projections(event: Event, plan: RoutingPlan) -> list[tuple[str, bytes, bytes]]:
    """``(key name, entity id, projection)`` for every key of ``plan`` with a value on ``event``.

    Events without a value for a key are not forwarded for it (an anonymous event has no
    ``user_id`` entity). The projection is computed once and shared by every key.
    """
    routed: list[tuple[str, bytes, bytes]] = []
    projected: bytes | None = None
    for key in plan.keys:
        value = key.value_of(event)
        if value is None or value == "":
            continue
        entity_id = str(value).encode()
        if len(entity_id) > _MAX_ID_BYTES:
            continue
        if projected is None:
            projected = event.project(plan.projection)
        routed.append((key.name, entity_id, projected))
    return routed


EntityEvent = tuple[str, bytes, int, int, bytes]
"""(key name, entity id, input partition, input offset, projection)"""


def route_event(
    event: Event, plan: RoutingPlan, *, partition: int, offset: int
) -> list[EntityEvent]:
    """The entity events of one event read at input ``partition``/``offset``."""
    return [
        (name, entity_id, partition, offset, projected)
        for name, entity_id, projected in entity_projections(event, plan)
    ]


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
            (
                name.decode(),
                raw[line_end + 1 : id_end],
                int(partition),
                int(offset),
                raw[id_end:end],
            )
        )
        position = end
    return events


def entity_row_key(key_name: str, entity_id: bytes) -> bytes:
    """Table key of one entity: the key name and the raw id, so equal ids of different keys
    (a ``user_id`` that is also some ``domain_userid``) never share a row."""
    return key_name.encode() + _ROW_KEY_SEP + entity_id


def split_row_key(row_key: bytes) -> tuple[str, bytes]:
    name, _, entity_id = row_key.partition(_ROW_KEY_SEP)
    return name.decode(), entity_id
