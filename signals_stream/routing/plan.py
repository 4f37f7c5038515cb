"""Which entities an event goes to: the routing plan (keys in use, projection) and the
entity events of one parsed event.

Enrich keys records by a random UUID, so events of one user are spread over every partition.
Before any per-entity state is touched, each event is forwarded once per attribute key it
carries, to the entity-events partition its entity id hashes to. The projection is the
compact orjson form of the event (``Event.project``) holding only what the published
definitions need; the input partition and offset it was read from make applying it
idempotent, however often the ingest and entity stages are re-run after a crash.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from signals_stream.events.event import Event, Projection

__all__ = [
    "BUILTIN_KEYS",
    "EntityEvent",
    "KeyRoute",
    "RoutingPlan",
    "builtin_key",
    "entity_projections",
    "route_event",
]

BUILTIN_KEYS = ("domain_userid", "domain_sessionid", "network_userid", "user_id")
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
    # Backfills of the catalog this plan was built from: the ingest flags the records it routes
    # with them (``engine.backfill``: the live road of a backfilled slot starts there).
    backfills: tuple[str, ...] = ()


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


class EntityEvent(NamedTuple):
    """One event on its way to one entity: what the entity-events topic carries per item."""

    key_name: str
    entity_id: bytes
    partition: int  # input partition the event was read from
    offset: int  # its input offset (with ``partition``: what makes applying it idempotent)
    projection: bytes  # the compact event, ``Event.project``


def route_event(
    event: Event, plan: RoutingPlan, *, partition: int, offset: int
) -> list[EntityEvent]:
    """The entity events of one event read at input ``partition``/``offset``."""
    return [
        EntityEvent(name, entity_id, partition, offset, projected)
        for name, entity_id, projected in entity_projections(event, plan)
    ]
