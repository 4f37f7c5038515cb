"""What the ingest stage sends on: entity-events records by entity partition, and dead letters.

Shared by both ingest modes: the Faust agent (``agents/ingest.py``) and the lean consumer
(``agents/lean_ingest.py``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from functools import lru_cache

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import RecordMetadata

from agents.counters import ingest_stats
from signals_stream.app import ENTITY_EVENTS_TOPIC, app, settings
from signals_stream.errors import BadEvent
from signals_stream.events.dead_letters import dead_letter_record
from signals_stream.routing.rekey import EntityEvent, encode_entity_event_records

__all__ = ["dead_letter", "entity_partition", "send_entity_events"]

_entity_partitions = list(range(settings.partitions))
# Per entity-events record: well under the 1 MB that Kafka brokers and Faust's producer accept
# by default, whatever the poll size.
_MAX_RECORD_BYTES = 512 * 1024


@lru_cache(maxsize=200_000)
def entity_partition(entity_id: bytes) -> int:
    """Kafka's default partitioner on the raw id: the hash Faust's router applies to table
    keys. Cached: ids repeat, and aiokafka's murmur2 is pure Python."""
    return DefaultPartitioner()(entity_id, _entity_partitions, _entity_partitions)


async def send_entity_events(
    by_partition: dict[int, list[EntityEvent]],
) -> list[Awaitable[RecordMetadata]]:
    """A record per entity partition (more for a large batch; events in input order); returns
    the acknowledgements.

    Straight to the producer: Faust's ``Topic.send`` machinery costs more than the engine step.
    """
    acks = []
    for target, items in by_partition.items():
        for record in encode_entity_event_records(items, _MAX_RECORD_BYTES):
            acks.append(
                await app.producer.send(ENTITY_EVENTS_TOPIC, None, record, target, None, None)
            )
        ingest_stats.forwarded += len(items)
    return acks


def dead_letter(
    value: bytes | None,
    error: BadEvent,
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
) -> bytes:
    """Count a bad record by reason and build its dead letter (for the bad-events topic)."""
    ingest_stats.bad[error.reason_kind] += 1
    return dead_letter_record(
        value or b"",
        error,
        topic=topic,
        partition=partition,
        offset=offset,
        key=key,
        failed_at_ms=int(time.time() * 1000),
    )
