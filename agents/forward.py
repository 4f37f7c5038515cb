"""What the ingest stage sends on: entity-events records by entity partition, and dead letters.

Shared by both ingest modes: the Faust agent (``agents/ingest.py``) and the lean consumer
(``agents/lean_ingest.py``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable

from aiokafka.structs import RecordMetadata

from signals_stream.errors import BadEvent
from signals_stream.events.dead_letters import dead_letter_record
from signals_stream.routing import EntityEvent, encode_entity_event_records
from signals_stream.worker_state import WorkerState

__all__ = ["Forwarder"]

# Per entity-events record: well under the 1 MB that Kafka brokers and Faust's producer accept
# by default, whatever the poll size.
_MAX_RECORD_BYTES = 512 * 1024


class Forwarder:
    """Sends entity events and dead letters through the app's producer."""

    def __init__(self, state: WorkerState) -> None:
        self._state = state
        self._entity_events = state.topics.entity_events_name

    async def send_entity_events(
        self, by_partition: dict[int, list[EntityEvent]]
    ) -> list[Awaitable[RecordMetadata]]:
        """A record per entity partition (more for a large batch; events in input order);
        returns the acknowledgements.

        Straight to the producer: Faust's ``Topic.send`` machinery costs more than the step.
        """
        producer = self._state.app.producer
        acks = []
        for target, items in by_partition.items():
            for record in encode_entity_event_records(items, _MAX_RECORD_BYTES):
                acks.append(
                    await producer.send(self._entity_events, None, record, target, None, None)
                )
            self._state.stats.forwarded += len(items)
        return acks

    def dead_letter(
        self,
        value: bytes | None,
        error: BadEvent,
        *,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
    ) -> bytes:
        """Count a bad record by reason and build its dead letter (for the bad-events topic)."""
        self._state.stats.bad[error.reason_kind] += 1
        return dead_letter_record(
            value or b"",
            error,
            topic=topic,
            partition=partition,
            offset=offset,
            key=key,
            failed_at_ms=int(time.time() * 1000),
        )
