"""One sync run of one warehouse group: changed rows, chunk by chunk, into entity rows.

Per chunk (``chunk`` rows, read by keyset after the watermark): the rows become sync records
(``engine.synced``) on the entity-events topic, each in the partition its entity id hashes
to, as the ingest stage routes events, so the owning worker writes them into the entity row.
Only once the broker acknowledged every record of the chunk is the watermark (the chunk's
last row) written to the sync-state topic. A crash in between re-sends that chunk on the next
run, which changes nothing (values are replaced only by values at least as new). A new chunk
waits while the owners have more than ~50,000 of the run's rows to apply (``sync.applied``),
so a large table never piles up in their consumers.

The first run reads from ``backfill_since_tstamp``, else from now minus the group's TTL (older
values would read as expired). The warehouse is opened for the run only and read in a thread:
its drivers block. Any failure (unreachable, a missing table or column, a broker error) ends
the run with ``last_error`` in the status; the watermark stays where the last acknowledged
chunk put it, so the next run (``refresh_rate`` later) retries from there.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from signals_stream.batch.compile import TIMESTAMP_COLUMN, batch_table
from signals_stream.definitions import AttributeGroup
from signals_stream.definitions.durations import duration_ms
from signals_stream.engine.synced import SyncItem, encode_sync_records, group_id
from signals_stream.kafka.partitioning import entity_partition
from signals_stream.settings import Settings
from signals_stream.sync.applied import AppliedWindow
from signals_stream.sync.state import SyncStatus, write_status
from signals_stream.sync.status import first_since_ms
from signals_stream.warehouse import ChangedRow, TableRef, Warehouse, open_warehouse

__all__ = ["MAX_RECORD_BYTES", "LastSent", "RunTarget", "run_group", "send_items", "sync_once"]

logger = logging.getLogger(__name__)

MAX_RECORD_BYTES = 512 * 1024  # as the ingest stage's entity-events records
Progress = Callable[[int], None]  # rows done so far in this run
LastSent = dict[int, SyncItem]  # entity partition -> the last item a run sent there
Opener = Callable[[str], Warehouse]


@dataclass
class RunTarget:
    """Where a run sends its rows and how: the producer, the entity-events topic, the chunk
    size, and what to tell the caller (progress, the last item per partition)."""

    producer: AIOKafkaProducer
    settings: Settings
    entity_events: str
    chunk: int = 10_000
    progress: Progress | None = None
    last_sent: LastSent | None = None


def _source(group: AttributeGroup, settings: Settings) -> tuple[TableRef, str]:
    """The table a warehouse group is synced from, and its timestamp column: the registered
    ``batch_source``, else (a batch group) the table ``batch run`` writes."""
    source = group.batch_source
    if source is not None:
        return TableRef(source.database, source.schema_, source.table), source.timestamp_field
    return batch_table(group, settings.batch_schema), TIMESTAMP_COLUMN


def _decoded(values: dict[str, Any], dicts: set[str]) -> dict[str, Any]:
    """``category_count`` values that the warehouse returns as JSON text, as objects."""
    for name in dicts:
        if isinstance(values.get(name), str):
            values[name] = orjson.loads(values[name])
    return values


async def send_items(
    producer: AIOKafkaProducer,
    settings: Settings,
    entity_events: str,
    items: list[SyncItem],
    last_sent: LastSent | None = None,
    offsets: dict[int, int] | None = None,
) -> int:
    """Send sync records for ``items`` to their entities' partitions; wait for the acks.
    ``last_sent`` gets, per partition, the last item sent there, ``offsets`` the offset of
    the last record."""
    by_partition: dict[int, list[SyncItem]] = {}
    for item in items:
        by_partition.setdefault(entity_partition(item.entity_id, settings.partitions), []).append(
            item
        )
    acks = [
        await producer.send(entity_events, record, partition=partition)
        for partition, chunk in by_partition.items()
        for record in encode_sync_records(chunk, MAX_RECORD_BYTES)
    ]
    for meta in await asyncio.gather(*acks):
        if offsets is not None:
            offsets[meta.partition] = max(offsets.get(meta.partition, -1), meta.offset)
    if last_sent is not None:
        last_sent.update((partition, chunk[-1]) for partition, chunk in by_partition.items())
    return len(items)


def _start(group: AttributeGroup, status: SyncStatus, now_ms: int) -> None:
    status.last_started_ms, status.running, status.last_error = now_ms, True, None
    status.rows_read = status.rows_sent = 0
    status.runs += 1
    status.next_run_ms = now_ms + duration_ms(group.sync_every)


def _finish(status: SyncStatus, error: str | None) -> None:
    status.running, status.last_finished_ms = False, int(time.time() * 1000)
    status.last_error = error
    if error is None:
        status.last_succeeded_ms = status.last_finished_ms
    else:
        status.failed_runs += 1


async def run_group(
    group: AttributeGroup, status: SyncStatus, warehouse: Warehouse, target: RunTarget
) -> None:
    """Sync ``group`` from ``warehouse`` once, from where ``status`` stands (a started run:
    see :func:`sync_once`), updating ``status`` and writing it after each acknowledged chunk.

    Raises:
        WarehouseError: and any broker error; what was acknowledged before stays.
    """
    table, timestamp_field = _source(group, target.settings)
    fields = [f.name for f in group.fields or group.attributes or ()]
    chunks: Iterator[list[ChangedRow]] = warehouse.changed_rows(
        table, id_column=group.id_column, timestamp_column=timestamp_field, fields=fields,
        after=status.watermark, since_ms=first_since_ms(group, status.last_started_ms or 0),
        chunk=target.chunk,
    )  # fmt: skip
    window = AppliedWindow(target.settings, target.entity_events)
    try:
        await _send_chunks(group, status, chunks, target, window)
    finally:
        await window.close()


async def _send_chunks(
    group: AttributeGroup,
    status: SyncStatus,
    chunks: Iterator[list[ChangedRow]],
    target: RunTarget,
    window: AppliedWindow,
) -> None:
    producer, settings = target.producer, target.settings
    gid = group_id(group.name, group.version)
    dicts = {a.name for a in group.attributes or () if a.type == "dict"}
    while True:
        await window.room()  # the owners keep up: a run never piles a table into them
        rows = await asyncio.to_thread(next, chunks, None)
        if rows is None:
            return
        status.rows_read += len(rows)
        items = [
            SyncItem(
                group.attribute_key.name,
                row.id.encode(),
                gid,
                row.ts_ms,
                _decoded(row.values, dicts),
            )
            for row in rows
        ]
        offsets: dict[int, int] = {}
        status.rows_sent += await send_items(
            producer, settings, target.entity_events, items, target.last_sent, offsets
        )
        window.sent(len(items), offsets)
        status.total_rows_sent += len(items)
        status.watermark_ms, status.watermark_id = rows[-1].ts_ms, rows[-1].id
        await write_status(producer, settings, status)  # after the chunk's acks
        if target.progress is not None:
            target.progress(status.rows_read)


async def sync_once(
    group: AttributeGroup, status: SyncStatus, target: RunTarget, opener: Opener = open_warehouse
) -> SyncStatus:
    """One run of ``group``'s sync: open the warehouse, :func:`run_group`, close it. Never
    raises for a failed run: the error is the status's ``last_error`` (written to the
    sync-state topic when the broker takes it; else the status is only in memory)."""
    _start(group, status, int(time.time() * 1000))
    error: str | None = None
    try:
        await write_status(target.producer, target.settings, status)  # "running", for all
        warehouse = await asyncio.to_thread(opener, target.settings.warehouse)
        try:
            await run_group(group, status, warehouse, target)
        finally:
            await asyncio.to_thread(warehouse.close)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # any failure ends this run only; adapters never put a URL in it
        error = str(exc) or type(exc).__name__
    _finish(status, error)
    try:
        await write_status(target.producer, target.settings, status)
    except Exception as exc:  # the broker is down too: the next run writes it
        logger.error("sync %s: status not written: %s", status.group, exc)
    return status
