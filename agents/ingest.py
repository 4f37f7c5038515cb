"""Ingestion agent (``SIGNALS_INGEST_MODE=faust``): Snowplow enriched records in through a
Faust agent; dead letters and entity events out. The default, lean mode reads the input with
a plain consumer instead (``agents/lean_ingest.py``)."""

from __future__ import annotations

import logging
import time
from functools import cache

from faust.types import StreamT

from agents.counters import event_to_processed, ingest_stats, processed_to_visible
from agents.forward import dead_letter, entity_partition, send_entity_events
from agents.state_writer import PendingRows, add_event, write_rows
from signals_stream.app import app, bad_events_topic, input_topic, settings
from signals_stream.engine.installed import current_plan
from signals_stream.errors import BadEvent
from signals_stream.events.parse import parse_record
from signals_stream.routing.rekey import EntityEvent, route_event

__all__ = ["ingest"]

logger = logging.getLogger(__name__)


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
                letter = dead_letter(
                    value,
                    error,
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    key=message.key,
                )
                await bad_events_topic.send(key=message.key, value=letter)
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
                by_partition.setdefault(entity_partition(item[1]), []).append(item)
        # The consumer flushes the producer before it commits, so this stays at-least-once.
        await send_entity_events(by_partition)
        processed = time.time()
        event_to_processed.observe_ages(event_times, int(processed * 1000))
        if direct:
            await write_rows(direct)
            processed_to_visible.observe(time.time() - processed, direct_events)


if settings.ingest_mode == "faust":
    app.agent(input_topic, name="ingest")(ingest)


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


@app.timer(interval=30.0)
async def log_ingest_stats() -> None:
    if ingest_stats.good or ingest_stats.bad:
        logger.info("ingest: %s", ingest_stats.summary())
