"""The sync engine on the workers: each published warehouse group is synced, every
``refresh_rate``, by the one worker owning the entity partition its ``<group>:<version>``
hashes to (one runner per group across the workers; when the partition moves, so does the
group). Runs go one at a time per worker, in a task beside the stream; a failing run only sets
the group's ``last_error`` (``/stats``, ``/metrics``, the sync-state topic), the stream and
the other groups go on, and the next run (``refresh_rate`` after the failed one) retries.
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
from signals_stream.sync.run import RunTarget, sync_once
from signals_stream.sync.state import SyncStatus, read_statuses
from signals_stream.warehouse import redact_url
from signals_stream.worker_state import WorkerState

__all__ = ["register_warehouse_sync"]

logger = logging.getLogger(__name__)

_CHECK_EVERY_S = 5.0


def register_warehouse_sync(state: WorkerState) -> None:
    """A timer that starts due runs of the groups this worker is the runner of."""
    settings = state.settings
    producer: list[AIOKafkaProducer] = []  # started on first use
    statuses = state.sync_statuses

    def due_groups(now_ms: int) -> list[str]:
        owned = state.entity_partitions()
        due = []
        for name, version in state.live.catalog.synced:
            gid = group_id(name, version)
            if entity_partition(gid.encode(), settings.partitions) not in owned:
                statuses.pop(gid, None)  # another worker runs it now
                continue
            status = statuses.get(gid)
            if status is None or (status.next_run_ms or 0) <= now_ms:
                due.append(gid)
        return due

    async def sync_due_groups() -> None:
        if not state.ready() or state.live.catalog.synced == {}:
            return
        due = due_groups(int(time.time() * 1000))
        if not due:
            return
        try:
            if not producer:
                started = AIOKafkaProducer(
                    bootstrap_servers=settings.bootstrap_servers, **client_auth(settings)
                )
                await started.start()
                producer.append(started)
            stored = await read_statuses(settings)  # where the previous runner left each group
        except Exception as exc:  # the broker is unreachable: try again at the next check
            logger.error("sync: the sync-state topic cannot be read: %s", exc)
            return
        for gid in due:
            synced = state.live.catalog.synced.get(_name_version(gid))
            if synced is None:  # unpublished meanwhile
                continue
            status = stored.get(gid) or statuses.get(gid) or SyncStatus(gid)
            statuses[gid] = status
            group = synced.definition
            if group.kind == "batch" and group.batch_source is None:
                try:  # a batch group is computed first, then synced from its table
                    result = await asyncio.to_thread(
                        run_batch, group, settings.warehouse,
                        parse_table_ref(settings.batch_events_table), settings.batch_schema,
                    )  # fmt: skip
                    logger.info("batch %s: %d rows, %s", gid, result.rows, result.mode)
                except SignalsStreamError as exc:
                    status.last_error = f"batch run: {exc}"
                    status.last_started_ms = int(time.time() * 1000)
                    status.next_run_ms = status.last_started_ms + duration_ms(group.sync_every)
                    logger.error("batch %s: %s (%s)", gid, exc, redact_url(settings.warehouse))
                    continue
            target = RunTarget(
                producer[0], settings, state.topics.entity_events_name, settings.sync_chunk_rows
            )
            await sync_once(group, status, target)
            if status.last_error:
                logger.error("sync %s failed: %s", gid, status.last_error)
            else:
                logger.info("sync %s: %d rows", gid, status.rows_sent)

    state.app.timer(interval=_CHECK_EVERY_S)(sync_due_groups)


def _name_version(gid: str) -> tuple[str, int]:
    name, version = gid.rsplit(":", 1)
    return name, int(version)
