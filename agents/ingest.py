"""Ingestion agent (``SIGNALS_INGEST_MODE=faust``): Snowplow enriched records in through a
Faust agent; dead letters and entity events out. The default, lean mode reads the input with
a plain consumer instead (``agents/lean_ingest.py``)."""

from __future__ import annotations

import logging
import time
from typing import cast

from faust import Stream
from faust.types import StreamT

from agents.dead_letter_sender import DeadLetterSender
from agents.forward import Forwarder
from agents.ingest_step import DeadLetter, Routed, ingest_record
from agents.rows import PendingRows, add_event, write_rows
from signals_stream.kafka.partitioning import entity_partition
from signals_stream.routing import EntityEvent
from signals_stream.worker_state import WorkerState

__all__ = ["register_faust_ingest", "register_stats_log"]

logger = logging.getLogger(__name__)


def register_faust_ingest(state: WorkerState, dead_letters: DeadLetterSender) -> None:
    """The ``ingest`` agent on the input topic. A batch whose dead letters the bad-events
    topic does not take waits, retrying, until they are written: its events are acknowledged
    (so committed) only after that, which holds the whole input meanwhile (the lean consumer
    keeps good events flowing)."""
    app, settings, stats = state.app, state.settings, state.stats
    forward = Forwarder(state)
    partitions = settings.partitions
    direct_key: list[str | None] = []  # decided once, at the first batch

    async def ingest(stream: StreamT[bytes]) -> None:
        """Parse a batch; bad records go to the dead-letter topic; the good ones leave as one
        entity-events record per entity partition (in input order), so the entity agent folds
        each entity once per batch."""
        await state.registry_log.ready.wait()  # the whole catalog, from the first event
        # ``take_events`` is the concrete stream's (Faust's StreamT lacks it)
        async for batch in cast(Stream[bytes], stream).take_events(
            settings.agent_batch_size, within=settings.agent_batch_within_ms / 1000
        ):
            stats.input_batches += 1
            plan = state.live.plan
            if not direct_key:
                direct_key.append(_direct_key(state))
            keyed_by = direct_key[0]
            direct: PendingRows = {}
            direct_events = 0
            by_partition: dict[int, list[EntityEvent]] = {}
            event_times: list[int] = []  # for the latency histogram, observed once per batch
            dead: list[DeadLetter] = []
            now_ms = int(time.time() * 1000)
            for event in batch:
                message = event.message
                outcome = ingest_record(
                    message.value,
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    key=message.key,
                    plan=plan,
                    stats=stats,
                    max_letter_bytes=settings.dead_letter_max_bytes,
                    now_ms=now_ms,
                )
                if type(outcome) is DeadLetter:
                    dead.append(outcome)
                    continue
                assert type(outcome) is Routed
                event_times.append(outcome.event_time_ms)
                for item in outcome.items:
                    if item.key_name == keyed_by and item.entity_id == message.key:
                        # already on its entity's partition
                        add_event(direct, item, message.partition, plan.backfills)
                        direct_events += 1
                        continue
                    target = entity_partition(item.entity_id, partitions)
                    by_partition.setdefault(target, []).append(item)
            await dead_letters.deliver(dead)
            await dead_letters.drained()  # the batch stays unacknowledged until they are written
            # The consumer flushes the producer before it commits, so this stays at-least-once.
            await forward.send_entity_events(by_partition, backfills=plan.backfills)
            processed = time.time()
            state.event_to_processed.observe_ages(event_times, int(processed * 1000))
            if direct:
                await write_rows(state, direct)
                state.processed_to_visible.observe(time.time() - processed, direct_events)

    app.agent(state.topics.input, name="ingest")(ingest)


def register_stats_log(state: WorkerState) -> None:
    """Log the ingest counters every 30 s (either ingest mode)."""
    stats = state.stats

    async def log_ingest_stats() -> None:
        if stats.good or stats.bad:
            logger.info("ingest: %s", stats.summary())

    state.app.timer(interval=30.0)(log_ingest_stats)


def _direct_key(state: WorkerState) -> str | None:
    """The key whose events skip the entity-events hop (``SIGNALS_INPUT_KEYED_BY``): only when
    the input topic has the table's partition count, so an id's input partition is its table
    partition (both hashed by Kafka's default partitioner on the same bytes)."""
    settings = state.settings
    keyed_by = settings.input_keyed_by
    partitions = state.app.consumer.topic_partitions(settings.input_topic)
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
