"""One sync run of one warehouse group: changed rows, chunk by chunk, into entity rows.

Per chunk (``chunk`` rows, read by keyset after the watermark): the rows become sync records
(``engine.synced``) on the entity-events topic, each in the partition its entity id hashes
to, as the ingest stage routes events, so the owning worker writes them into the entity row.
Only once the broker acknowledged every record of the chunk is the watermark (the chunk's
last row) written to the sync-state topic. A crash in between re-sends that chunk on the next
run, which changes nothing (values are replaced only by values at least as new).

The first run reads from ``backfill_since_tstamp``, else from now minus the group's TTL (older
values would read as expired). The warehouse is read in a thread: its drivers block.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from signals_stream.batch.compile import TIMESTAMP_COLUMN, batch_table
from signals_stream.definitions import AttributeGroup
from signals_stream.definitions.durations import duration_ms
from signals_stream.engine.synced import SyncItem, encode_sync_records, group_id
from signals_stream.kafka.partitioning import entity_partition
from signals_stream.settings import Settings
from signals_stream.sync.state import SyncStatus, write_status
from signals_stream.warehouse import ChangedRow, TableRef, Warehouse, WarehouseError

__all__ = ["MAX_RECORD_BYTES", "run_group", "send_items"]

MAX_RECORD_BYTES = 512 * 1024  # as the ingest stage's entity-events records
Progress = Callable[[int], None]  # rows done so far in this run


def _first_since_ms(group: AttributeGroup, now_ms: int) -> int:
    if group.backfill_since_tstamp is not None:
        return int(group.backfill_since_tstamp.timestamp() * 1000)
    return now_ms - duration_ms(group.warehouse_ttl)


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
    producer: AIOKafkaProducer, settings: Settings, entity_events: str, items: list[SyncItem]
) -> int:
    """Send sync records for ``items`` to their entities' partitions; wait for the acks."""
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
    await asyncio.gather(*acks)
    return len(items)


async def run_group(
    group: AttributeGroup,
    status: SyncStatus,
    warehouse: Warehouse,
    producer: AIOKafkaProducer,
    settings: Settings,
    entity_events: str,
    *,
    chunk: int = 10_000,
    progress: Progress | None = None,
) -> SyncStatus:
    """Sync ``group`` once from where ``status`` stands; returns (and has written) its new
    status. A warehouse error ends the run with ``last_error`` set (the next run retries);
    what was already synced stays."""
    table, timestamp_field = _source(group, settings)
    gid = group_id(group.name, group.version)
    now_ms = int(time.time() * 1000)
    status.last_started_ms, status.running, status.last_error = now_ms, True, None
    status.rows_read = status.rows_sent = 0
    fields = [f.name for f in group.fields or group.attributes or ()]
    dicts = {a.name for a in group.attributes or () if a.type == "dict"}
    chunks: Iterator[list[ChangedRow]] = warehouse.changed_rows(
        table, id_column=group.id_column, timestamp_column=timestamp_field, fields=fields,
        after=status.watermark, since_ms=_first_since_ms(group, now_ms), chunk=chunk,
    )  # fmt: skip
    try:
        while True:
            rows = await asyncio.to_thread(next, chunks, None)
            if rows is None:
                break
            status.rows_read += len(rows)
            items = [
                SyncItem(
                    group.attribute_key.name, row.id.encode(), gid, row.ts_ms,
                    _decoded(row.values, dicts),
                )
                for row in rows
            ]  # fmt: skip
            status.rows_sent += await send_items(producer, settings, entity_events, items)
            status.total_rows_sent += len(items)
            status.watermark_ms, status.watermark_id = rows[-1].ts_ms, rows[-1].id
            await write_status(producer, settings, status)  # after the chunk's acks
            if progress is not None:
                progress(status.rows_read)
    except WarehouseError as exc:
        status.last_error = str(exc)  # adapters never put a URL in their messages
    status.running, status.last_finished_ms = False, int(time.time() * 1000)
    await write_status(producer, settings, status)
    return status
