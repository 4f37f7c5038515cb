"""Re-keying: from one parsed event to the per-entity records of the entity-events topic.

Enrich keys records by a random UUID, so events of one user are spread over every partition.
Before any per-entity state is touched, each event is forwarded once per attribute key it
carries, keyed by the raw bytes of the entity id. The record value is an *envelope*::

    <key name> LF <partition> SP <offset> SP <projection> [LF <partition> SP <offset> SP ...]

where each projection is the compact orjson form of the event (``Event.project``) holding only
what the published definitions need, tagged with the input partition and offset it was read
from: that source position is what makes applying it idempotent, however often the ingest and
entity stages are re-run after a crash. orjson never emits a raw LF, so LF is a safe separator,
and one envelope carries the events of one entity from one batch (one table write).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from signals_stream.events import Event, Projection

__all__ = [
    "BUILTIN_KEYS",
    "KeyRoute",
    "RoutingPlan",
    "SourcedProjection",
    "builtin_key",
    "decode_envelope",
    "encode_envelope",
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


def route_event(
    event: Event, plan: RoutingPlan, *, partition: int, offset: int
) -> list[tuple[bytes, bytes]]:
    """``(entity id, envelope)`` records for one event read at ``partition``/``offset``."""
    return [
        (entity_id, encode_envelope(name, [(partition, offset, projected)]))
        for name, entity_id, projected in entity_projections(event, plan)
    ]


SourcedProjection = tuple[int, int, bytes]  # (input partition, input offset, projection)


def encode_envelope(key_name: str, events: Sequence[SourcedProjection]) -> bytes:
    return b"\n".join(
        [key_name.encode(), *(b"%d %d %s" % (p, o, projection) for p, o, projection in events)]
    )


def decode_envelope(raw: bytes) -> tuple[str, list[SourcedProjection]]:
    """Inverse of :func:`encode_envelope`.

    Raises:
        ValueError: the record is not an envelope.
    """
    head, sep, rest = raw.partition(b"\n")
    if not sep or not head:
        raise ValueError("not an entity envelope")
    events = []
    for line in rest.split(b"\n"):
        partition, offset, projection = line.split(b" ", 2)
        events.append((int(partition), int(offset), projection))
    return head.decode(), events


def entity_row_key(key_name: str, entity_id: bytes) -> bytes:
    """Table key of one entity: the key name and the raw id, so equal ids of different keys
    (a ``user_id`` that is also some ``domain_userid``) never share a row."""
    return key_name.encode() + _ROW_KEY_SEP + entity_id


def split_row_key(row_key: bytes) -> tuple[str, bytes]:
    name, _, entity_id = row_key.partition(_ROW_KEY_SEP)
    return name.decode(), entity_id
