"""Entity agent: folds re-keyed events into entity state rows, exactly once in effect, and
sweeps expired rows."""

from __future__ import annotations

import time

from faust.types import EventT, StreamT

from agents.counters import ingest_stats, processed_to_visible
from agents.state_writer import PendingRows, add_event, write_rows
from signals_stream.app import ENTITY_EVENTS_TOPIC, app, entity_events_topic, settings
from signals_stream.routing.rekey import decode_entity_events
from tables.entity_sweep import Sweeper

__all__ = ["entities", "sweeper"]

sweeper = Sweeper()
_last_sweep: dict[int, float] = {}
_SWEEP_STEP_EVERY_S = 1.0  # one bounded slice per partition per second at most


@app.agent(entity_events_topic, name="entities", concurrency=1)
async def entities(stream: StreamT[bytes]) -> None:
    """Per batch: one table read and at most one write per entity row (see ``state_writer``),
    then a bounded sweep slice of each partition the batch came from."""
    async for batch in stream.take_events(
        settings.agent_batch_size, within=settings.agent_batch_within_ms / 1000
    ):
        ingest_stats.entity_batches += 1
        pending: PendingRows = {}
        by_partition: dict[int, EventT] = {}
        # (the ingest agent's send time, events): one latency observation per record
        sent: list[tuple[float, int]] = []
        for record in batch:
            by_partition[record.message.partition] = record
            items = decode_entity_events(record.message.value)
            for item in items:
                add_event(pending, item, record)
            if items:
                ingest_stats.entity_events_received += len(items)
                if record.message.timestamp:  # the producer's create time, in seconds
                    sent.append((record.message.timestamp, len(items)))
        await write_rows(pending)
        visible = time.time()
        for sent_at, count in sent:
            processed_to_visible.observe(visible - sent_at, count)
        now = time.monotonic()
        for partition, record in by_partition.items():
            if now - _last_sweep.get(partition, 0.0) >= _SWEEP_STEP_EVERY_S:
                _last_sweep[partition] = now
                sweeper.step(partition, record)


@app.timer(interval=settings.sweep_interval_s)
async def tick_owned_partitions() -> None:
    """An empty record to each entity partition this worker owns, so idle ones are swept."""
    for tp in app.consumer.assignment():
        if tp.topic == ENTITY_EVENTS_TOPIC:
            await app.producer.send(ENTITY_EVENTS_TOPIC, None, b"", tp.partition, None, None)
