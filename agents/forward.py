"""What the ingest stage sends on: entity-events records by entity partition (dead letters go
through ``agents/dead_letter_sender.py``).

Shared by both ingest modes: the Faust agent (``agents/ingest.py``) and the lean consumer
(``agents/lean_ingest.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable

from aiokafka.structs import RecordMetadata

from agents.ingest_step import MAX_ENTITY_EVENT_BYTES
from signals_stream.routing import EntityEvent, encode_entity_event_records
from signals_stream.routing.backfill_headers import routed_for_header
from signals_stream.worker_state import WorkerState

__all__ = ["Forwarder"]


class Forwarder:
    """Sends entity events through the app's producer."""

    def __init__(self, state: WorkerState) -> None:
        self._state = state
        self._entity_events = state.topics.entity_events_name

    async def send_entity_events(
        self,
        by_partition: dict[int, list[EntityEvent]],
        *,
        backfills: tuple[str, ...] = (),
        headers: list[tuple[str, bytes]] | None = None,
        counted: bool = True,
    ) -> list[Awaitable[RecordMetadata]]:
        """A record per entity partition (more for a large batch; events in input order);
        returns the acknowledgements.

        Args:
            backfills: the backfill ids of the plan that routed them (``engine.backfill``).
            headers: instead, the headers of every record (the backfill road's).
            counted: count the events in ``forwarded`` (the live road's).

        Straight to the producer: Faust's ``Topic.send`` machinery costs more than the step.
        """
        producer = self._state.app.producer
        headers = headers if headers is not None else routed_for_header(backfills)
        acks = []
        for target, items in by_partition.items():
            for record in encode_entity_event_records(items, MAX_ENTITY_EVENT_BYTES):
                acks.append(
                    await producer.send(self._entity_events, None, record, target, None, headers)
                )
            if counted:
                self._state.stats.forwarded += len(items)
        return acks
