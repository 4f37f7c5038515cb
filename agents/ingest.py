"""Ingestion agent: Snowplow enriched records in; dead letters and entity events out."""

from __future__ import annotations

import logging
import time
from functools import cache, lru_cache

from aiokafka.partitioner import DefaultPartitioner
from faust.types import EventT, StreamT

from agents.counters import event_to_processed, ingest_stats, processed_to_visible
from agents.state_writer import PendingRows, add_event, write_rows
from signals_stream.app import ENTITY_EVENTS_TOPIC, app, bad_events_topic, input_topic, settings
from signals_stream.deadletter import dead_letter_record
from signals_stream.errors import BadEvent
from signals_stream.events import parse_record
from signals_stream.live import current_plan
from signals_stream.routing import EntityEvent, encode_entity_events, route_event

__all__ = ["ingest"]

logger = logging.getLogger(__name__)
_entity_partitions = list(range(settings.partitions))


@lru_cache(maxsize=200_000)
def _entity_partition(entity_id: bytes) -> int:
    """Kafka's default partitioner on the raw id: the hash Faust's router applies to table
    keys. Cached: ids repeat, and aiokafka's murmur2 is pure Python."""
    return DefaultPartitioner()(entity_id, _entity_partitions, _entity_partitions)


@app.agent(input_topic, name="ingest")
async def ingest(stream: StreamT[bytes]) -> None:
    """Parse a batch; bad records go to the dead-letter topic; the good ones leave as one
    entity-events record per entity partition (in input order), so the entity agent folds
    each entity once per batch."""
    async for batch in stream.take_events(
        settings.agent_batch_size, within=settings.agent_batch_within_ms / 1000
    ):
        ingest_stats.input_batches += 1
        plan = current_plan()
        keyed_by = _direct_key()
        direct: PendingRows = {}
        direct_events = 0
        by_partition: dict[int, list[EntityEvent]] = {}
        event_times: list[int] = []  # for the latency histogram, observed once per batch
        for event in batch:
            message = event.message
            value = message.value
            try:
                parsed = parse_record(value if value is not None else b"")
            except BadEvent as error:
                await _dead_letter(event, error)
                continue
            ingest_stats.good += 1
            event_times.append(parsed.event_time_ms)
            for item in route_event(
                parsed, plan, partition=message.partition, offset=message.offset
            ):
                if item[0] == keyed_by and item[1] == message.key:
                    add_event(direct, item, event)  # already on its entity's partition
                    direct_events += 1
                    continue
                target = _entity_partition(item[1])
                by_partition.setdefault(target, []).append(item)
        # Straight to the producer: Faust's Topic.send machinery costs more than the engine
        # step. The consumer flushes the producer before it commits, so this stays
        # at-least-once.
        for target, items in by_partition.items():
            await app.producer.send(
                ENTITY_EVENTS_TOPIC, None, encode_entity_events(items), target, None, None
            )
            ingest_stats.forwarded += len(items)
        processed = time.time()
        event_to_processed.observe_ages(event_times, int(processed * 1000))
        if direct:
            await write_rows(direct)
            processed_to_visible.observe(time.time() - processed, direct_events)


@cache  # decided once, at the first batch (the consumer has the topic's metadata by then)
def _direct_key() -> str | None:
    """The key whose events skip the entity-events hop (``SIGNALS_INPUT_KEYED_BY``): only when
    the input topic has the table's partition count, so an id's input partition is its table
    partition (both hashed by Kafka's default partitioner on the same bytes)."""
    keyed_by = settings.input_keyed_by
    partitions = app.consumer.topic_partitions(settings.input_topic)
    if keyed_by is not None and partitions != settings.partitions:
        logger.error(
            "SIGNALS_INPUT_KEYED_BY=%s ignored: %s has %s partitions, SIGNALS_PARTITIONS is %d",
            keyed_by,
            settings.input_topic,
            partitions,
            settings.partitions,
        )
        return None
    return keyed_by


async def _dead_letter(event: EventT, error: BadEvent) -> None:
    message = event.message
    ingest_stats.bad[error.reason_kind] += 1
    await bad_events_topic.send(
        key=message.key,
        value=dead_letter_record(
            message.value or b"",
            error,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=message.key,
            failed_at_ms=int(time.time() * 1000),
        ),
    )


@app.timer(interval=30.0)
async def log_ingest_stats() -> None:
    if ingest_stats.good or ingest_stats.bad:
        logger.info("ingest: %s", ingest_stats.summary())
