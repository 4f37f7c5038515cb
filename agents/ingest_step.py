"""One input record through the ingest stage, without I/O: parse it, and route its entity
events or build its dead letter. Both ingest modes run :func:`ingest_record` per record (the
lean consumer through :class:`IngestBatch`); the tests drive the same code in process.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from signals_stream.errors import BadEvent
from signals_stream.events.dead_letters import dead_letter_record
from signals_stream.events.parse import parse_record
from signals_stream.kafka.partitioning import entity_partition
from signals_stream.ops.stats import IngestStats
from signals_stream.routing import EntityEvent, RoutingPlan, route_event

__all__ = ["MAX_ENTITY_EVENT_BYTES", "DeadLetter", "IngestBatch", "Routed", "ingest_record"]

# Per entity-events record: well under the 1 MB that Kafka brokers and Faust's producer accept
# by default. One event whose projection alone exceeds it could not be forwarded at all: it
# becomes a ``SizeViolation`` dead letter (the definitions decide what a projection carries).
MAX_ENTITY_EVENT_BYTES = 512 * 1024


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A bad input record's letter for the bad-events topic, and where the record was read."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    reason: str


@dataclass(frozen=True, slots=True)
class Routed:
    """A good record: its event time and its entity events."""

    event_time_ms: int
    items: list[EntityEvent]


def ingest_record(
    value: bytes | None,
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    plan: RoutingPlan,
    stats: IngestStats,
    max_letter_bytes: int,
    now_ms: int,
) -> Routed | DeadLetter:
    """Parse one input record; count it as good, or as bad by reason kind."""
    raw = value if value is not None else b""
    try:
        event = parse_record(raw)
        items = route_event(event, plan, partition=partition, offset=offset)
        if items and len(items[0].projection) > MAX_ENTITY_EVENT_BYTES - 2048:  # item header
            raise BadEvent(
                "SizeViolation",
                f"the event's projection for its entities is {len(items[0].projection)} bytes, "
                f"more than an entity-events record holds ({MAX_ENTITY_EVENT_BYTES})",
            )
    except BadEvent as error:
        stats.bad[error.reason_kind] += 1
        letter = dead_letter_record(
            raw,
            error,
            topic=topic,
            partition=partition,
            offset=offset,
            key=key,
            failed_at_ms=now_ms,
            max_bytes=max_letter_bytes,
        )
        return DeadLetter(topic, partition, offset, key, letter, error.reason)
    stats.good += 1
    return Routed(event.event_time_ms, items)


@dataclass(slots=True)
class IngestBatch:
    """What one poll's records become in the lean ingest: entity events grouped by the
    entity-events partition their id hashes to (input order kept), dead letters in input
    order, and the good events' times (for the latency histogram)."""

    plan: RoutingPlan
    partitions: int
    stats: IngestStats
    max_letter_bytes: int
    now_ms: int
    by_partition: dict[int, list[EntityEvent]] = field(default_factory=dict)
    dead: list[DeadLetter] = field(default_factory=list)
    event_times: list[int] = field(default_factory=list)

    def add(self, value: bytes | None, *, topic: str, partition: int, offset: int,
            key: bytes | None) -> None:  # fmt: skip
        outcome = ingest_record(
            value,
            topic=topic,
            partition=partition,
            offset=offset,
            key=key,
            plan=self.plan,
            stats=self.stats,
            max_letter_bytes=self.max_letter_bytes,
            now_ms=self.now_ms,
        )
        if type(outcome) is DeadLetter:
            self.dead.append(outcome)
            return
        assert type(outcome) is Routed
        self.event_times.append(outcome.event_time_ms)
        by_partition, partitions = self.by_partition, self.partitions
        for item in outcome.items:
            target = entity_partition(item.entity_id, partitions)
            routed = by_partition.get(target)
            if routed is None:
                by_partition[target] = [item]
            else:
                routed.append(item)
