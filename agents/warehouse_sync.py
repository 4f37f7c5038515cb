"""The sync engine on the workers: each published warehouse group is synced, every
``refresh_rate``, by the one worker owning the entity partition its ``<group>:<version>``
hashes to (one runner per group across the workers; when the partition moves, so does the
group). Runs go one at a time per worker, in a task beside the stream; a failing warehouse
only sets the group's ``last_error`` (``/stats``), the stream and the other groups go on.
A batch group (attributes, no registered ``batch_source``) is first computed in the warehouse
(``batch.run.run_batch``, incrementally where it can), then synced from its table.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaProducer

from signals_stream.batch.compile import parse_table_ref
from signals_stream.batch.run import run_batch
from signals_stream.definitions.durations import duration_ms
from signals_stream.engine.synced import group_id
from signals_stream.errors import SignalsStreamError
from signals_stream.kafka.auth import client_auth
from signals_stream.kafka.partitioning import entity_partition
from signals_stream.sync.run import run_group
from signals_stream.sync.state import SyncStatus, read_statuses
from signals_stream.warehouse import WarehouseError, open_warehouse, redact_url
from signals_stream.worker_state import WorkerState

__all__ = ["register_warehouse_sync"]

logger = logging.getLogger(__name__)

_CHECK_EVERY_S = 5.0


def register_warehouse_sync(state: WorkerState) -> None:
    """A timer that starts due runs of the groups this worker is the runner of."""
    settings = state.settings
    producer: list[AIOKafkaProducer] = []  # started on first use
    statuses = state.sync_statuses

    async def sync_due_groups() -> None:
        if not state.ready() or state.live.catalog.synced == {}:
            return
        owned = state.entity_partitions()
        now_ms = int(time.time() * 1000)
        due = []
        for (name, version), synced in state.live.catalog.synced.items():
            gid = group_id(name, version)
            if entity_partition(gid.encode(), settings.partitions) not in owned:
                continue
            status = statuses.get(gid)
            every = duration_ms(synced.definition.sync_every)
            if status is None or (status.last_started_ms or 0) + every <= now_ms:
                due.append((gid, synced.definition))
        if not due:
            return
        if not producer:
            producer.append(
                AIOKafkaProducer(
                    bootstrap_servers=settings.bootstrap_servers, **client_auth(settings)
                )
            )
            await producer[0].start()
        stored = await read_statuses(settings)  # the watermark another runner may have moved
        for gid, group in due:
            status = stored.get(gid) or statuses.get(gid) or SyncStatus(gid)
            statuses[gid] = status
            if group.kind == "batch" and group.batch_source is None:
                try:  # a batch group is computed first, then synced from its table
                    result = await asyncio.to_thread(
                        run_batch, group, settings.warehouse,
                        parse_table_ref(settings.batch_events_table), settings.batch_schema,
                    )  # fmt: skip
                    logger.info("batch %s: %d rows, %s", gid, result.rows, result.mode)
                except SignalsStreamError as exc:
                    status.last_error, status.last_started_ms = f"batch run: {exc}", now_ms
                    logger.error("batch %s: %s (%s)", gid, exc, redact_url(settings.warehouse))
                    continue
            try:
                warehouse = await asyncio.to_thread(open_warehouse, settings.warehouse)
            except WarehouseError as exc:
                status.last_error, status.last_started_ms = str(exc), now_ms
                logger.error("sync %s: %s (%s)", gid, exc, redact_url(settings.warehouse))
                continue
            try:
                await run_group(
                    group, status, warehouse, producer[0], settings,
                    state.topics.entity_events_name,
                )  # fmt: skip
            finally:
                await asyncio.to_thread(warehouse.close)
            if status.last_error:
                logger.error("sync %s failed: %s", gid, status.last_error)
            else:
                logger.info("sync %s: %d rows", gid, status.rows_sent)

    state.app.timer(interval=_CHECK_EVERY_S)(sync_due_groups)
