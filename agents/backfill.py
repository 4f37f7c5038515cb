"""Backfill tasks on the workers: the backfill road of ``engine.backfill``.

For each backfill in the catalog and each input partition ``p``, the worker owning entity
partition ``p mod SIGNALS_PARTITIONS`` runs a task (so tasks move with Faust's assignment: a
killed worker's tasks resume on the partitions' new owner). A task reads ``p`` from the first
record stamped at ``backfill_since_tstamp`` to the partition's end as of the task's start
(taken after a settling pause, so every worker's ingest routes with the new catalog by then:
the end is past the live road's start), or, for a range backfill (``backfill_until_tstamp``),
to the first record stamped at its end when that comes earlier, routes each record with the
backfill's plan (its key, what its slots read) and sends the entity events to their
partitions marked with the backfill's id. After every
``SIGNALS_BACKFILL_CHECKPOINT_RECORDS`` records, once the broker acknowledged what was sent,
it writes its position to ``<app_id>-backfill``; a restarted task resumes there and rows skip
what they folded already (``b``).

The read shares the worker's event loop in slices of 500 records (``kafka/log_window``) and
may be rate-limited (``SIGNALS_BACKFILL_MAX_RATE``): live traffic and reads go on meanwhile.
Records that do not parse were dead-lettered when the live stream read them: skipped here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable

from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from agents.forward import Forwarder
from agents.warehouse_backfill import warehouse_cut
from signals_stream.engine.catalog import Backfill
from signals_stream.errors import BadEvent
from signals_stream.events.parse import parse_record
from signals_stream.history.backfill_state import (
    BackfillTask,
    read_backfill_state,
    write_task,
)
from signals_stream.kafka.auth import client_auth
from signals_stream.kafka.log_window import partition_start, read_log_range
from signals_stream.kafka.partitioning import entity_partition
from signals_stream.kafka.topics import topic_partitions
from signals_stream.routing import EntityEvent, route_event
from signals_stream.routing.backfill_headers import BACKFILL_HEADER
from signals_stream.worker_state import WorkerState

__all__ = ["register_backfills"]

logger = logging.getLogger(__name__)

_CHECK_EVERY_S = 2.0
# Between a backfill's first sight and its tasks' end offsets: the catalog reaches every
# worker's ingest through the registry log within this (it is read continuously).
_SETTLE_S = 3.0


def _now_ms() -> int:
    return int(time.time() * 1000)


class BackfillRunner:
    """Starts, resumes and stops this worker's backfill tasks as the catalog and the
    assignment change."""

    def __init__(self, state: WorkerState) -> None:
        self._state = state
        self._forward = Forwarder(state)
        self._running: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._finished: set[tuple[str, int]] = set()
        self._input_partitions: int | None = None
        self._producer: AIOKafkaProducer | None = None

    async def check(self) -> None:
        state = self._state
        backfills = state.live.catalog.backfills
        if not state.ready() or (not backfills and not self._running):
            return
        settings = state.settings
        owned = state.entity_partitions()
        if self._input_partitions is None:
            self._input_partitions = await topic_partitions(
                settings.bootstrap_servers, settings.input_topic, auth=client_auth(settings)
            )
            if self._input_partitions is None:
                return
        wanted = {
            (bid, p)
            for bid in backfills
            if bid not in state.backfills.cancelled
            for p in range(self._input_partitions)
            if p % settings.partitions in owned
        }
        for key in [k for k in self._running if k not in wanted]:  # moved, cancelled, gone
            self._running.pop(key).cancel()
        todo = [k for k in wanted if k not in self._running and k not in self._finished]
        if not todo and not self._running:
            return
        _, cancelled = await read_backfill_state(settings)
        state.backfills.cancelled |= cancelled
        for key in todo:
            if key[0] in cancelled:
                continue
            self._running[key] = asyncio.create_task(self._run(backfills[key[0]], key[1]))

    async def _run(self, backfill: Backfill, partition: int) -> None:
        key = (backfill.id, partition)
        try:
            await self._run_task(backfill, partition)
            self._finished.add(key)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the broker, mostly: retried at the next check
            logger.error("backfill %s partition %d: %r (retrying)", backfill.id, partition, exc)
        finally:
            if self._running.get(key) is asyncio.current_task():
                del self._running[key]

    async def _producer_started(self) -> AIOKafkaProducer:
        if self._producer is None:
            settings = self._state.settings
            self._producer = AIOKafkaProducer(
                bootstrap_servers=settings.bootstrap_servers, **client_auth(settings)
            )
            await self._producer.start()
        return self._producer

    async def _task(self, backfill: Backfill, partition: int) -> BackfillTask:
        """The task's checkpoint, or a new task over the partition (first, end as of now)."""
        settings = self._state.settings
        tasks, cancelled = await read_backfill_state(settings)
        self._state.backfills.cancelled |= cancelled
        found = tasks.get(f"task/{backfill.id}/{partition}")
        if found is not None:
            return found
        await asyncio.sleep(_SETTLE_S)
        start = await partition_start(
            settings.bootstrap_servers, settings.input_topic, partition, backfill.since_ms,
            until_ms=backfill.until_ms, auth=client_auth(settings),
        )  # fmt: skip
        now = _now_ms()
        task = BackfillTask(
            backfill=backfill.id, group=backfill.group, version=backfill.version,
            partition=partition, since_ms=backfill.since_ms, first=start.first, end=start.end,
            next=start.first, started_ms=now, updated_ms=now, earliest_ms=start.earliest_ms,
            until_ms=backfill.until_ms,
        )  # fmt: skip
        if start.earliest_ms is not None:
            logger.warning(
                "backfill %s partition %d: the log no longer holds %d; it starts at %d",
                backfill.id, partition, backfill.since_ms, start.earliest_ms,
            )  # fmt: skip
        await write_task(await self._producer_started(), settings, task)
        return task

    async def _run_task(self, backfill: Backfill, partition: int) -> None:
        state, settings = self._state, self._state.settings
        task = await self._task(backfill, partition)
        state.backfills.tasks[(backfill.id, partition)] = task
        if task.state != "running":
            return
        if task.next >= task.end:
            await self._checkpoint(task, [], task.end, done=True)
            return
        # the warehouse gives what was collected before the cut (agents/warehouse_backfill)
        cut_ms = await warehouse_cut(settings, backfill)
        plan = backfill.routing_plan()
        headers = [(BACKFILL_HEADER, backfill.id.encode())]
        partitions, max_rate = settings.partitions, settings.backfill_max_rate
        acks: list[Awaitable[RecordMetadata]] = []
        since_checkpoint = 0
        began, read_here = time.monotonic(), 0
        records = read_log_range(
            settings.bootstrap_servers, settings.input_topic, {partition: (task.next, task.end)},
            0, auth=client_auth(settings),
        )  # fmt: skip
        step = min(500, settings.backfill_checkpoint_records)
        async for fetched in records:
            for at in range(0, len(fetched), step):  # checkpoints and the rate limit per slice
                batch = fetched[at : at + step]
                by_partition: dict[int, list[EntityEvent]] = {}
                for record in batch:
                    # Every record of the block is taken (kafka.log_window.partition_start):
                    # one skipped past the live road's start would be lost (engine.backfill).
                    try:
                        event = parse_record(record.value)
                    except BadEvent:
                        continue
                    if cut_ms is not None and event.collector_tstamp_ms < cut_ms:
                        continue
                    for item in route_event(event, plan, partition=partition, offset=record.offset):
                        target = entity_partition(item.entity_id, partitions)
                        by_partition.setdefault(target, []).append(item)
                        task.sent += 1
                acks += await self._forward.send_entity_events(
                    by_partition, headers=headers, counted=False
                )
                task.read += len(batch)
                read_here += len(batch)
                since_checkpoint += len(batch)
                position = batch[-1].offset + 1
                if since_checkpoint >= settings.backfill_checkpoint_records:
                    since_checkpoint = 0
                    acks = await self._checkpoint(task, acks, position)
                    if backfill.id in state.backfills.cancelled:
                        task.state = "cancelled"
                        await self._checkpoint(task, [], position)
                        return
                if max_rate:
                    ahead_s = read_here / max_rate - (time.monotonic() - began)
                    if ahead_s > 0:
                        await asyncio.sleep(ahead_s)
        await self._checkpoint(task, acks, task.end, done=True)
        logger.info("backfill %s partition %d: done, %d records", backfill.id, partition, task.read)

    async def _checkpoint(
        self,
        task: BackfillTask,
        acks: list[Awaitable[RecordMetadata]],
        position: int,
        *,
        done: bool = False,
    ) -> list[Awaitable[RecordMetadata]]:
        """Once everything sent is acknowledged: the position (and state) to the topic."""
        await asyncio.gather(*acks)  # a failed send raises: the checkpoint stays behind
        task.next = position
        task.updated_ms = _now_ms()
        if done:
            task.state = "done"
        await write_task(await self._producer_started(), self._state.settings, task)
        return []

    async def stop(self) -> None:
        for running in list(self._running.values()):
            running.cancel()
        if self._producer is not None:
            await self._producer.stop()


def register_backfills(state: WorkerState) -> BackfillRunner:
    """A timer that starts and stops this worker's backfill tasks."""
    runner = BackfillRunner(state)
    state.app.timer(interval=_CHECK_EVERY_S)(runner.check)
    return runner
