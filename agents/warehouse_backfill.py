"""The warehouse part of a backfill, on the workers (``SIGNALS_BACKFILL_FROM_WAREHOUSE``).

For each backfill in the catalog, the worker owning entity partition
``entity_partition(<backfill id>)`` coordinates (it moves with Faust's assignment):

1. It reads where each input partition starts (its first record's time ``A_p``). When every
   partition starts at or before ``backfill_since_tstamp``, the log holds the whole range:
   the part is ``log`` and the log backfill (``agents/backfill``) does everything, as without
   a warehouse. Likewise, with a note, for a group whose state the warehouse cannot give
   (``batch.backfill_states.why_not_from_warehouse``).
2. Otherwise the cut is ``max(A_p) + 1`` ms (collector time): every record no longer (or never)
   in the log was stamped before its partition's first one, and collected before it was
   stamped, so the warehouse holds all of them below the cut. The cut goes to the backfill
   topic first; each log task waits for it and skips the events collected before it (the
   warehouse's), and takes the rest.
3. Once the warehouse has loaded events collected at or past the cut (so nothing below it is
   still on its way), the batch compiler's state query over ``[since, cut)`` runs there (in a
   thread) and each entity's states go to its partition on the entity-events topic
   (``engine.warehouse_states``), merged once per row. Then the part is ``done``.

A failure (warehouse, broker) is the part's ``error`` and is retried at the next check; a
resend after a restart is skipped by the rows that merged it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka import AIOKafkaProducer

from signals_stream.batch.backfill_sql import backfill_queries
from signals_stream.batch.backfill_states import (
    StatesBuilder,
    why_not_from_warehouse,
)
from signals_stream.batch.compile import EventsTable, parse_table_ref
from signals_stream.engine.catalog import Backfill, PublishedGroup
from signals_stream.engine.row import decode_row, encode_row
from signals_stream.engine.warehouse_states import (
    WarehouseStates,
    decode_states_record,
    encode_states_records,
    merge_warehouse_states,
)
from signals_stream.history.warehouse_backfill_state import (
    WarehousePart,
    read_warehouse_parts,
    write_warehouse_part,
)
from signals_stream.kafka.auth import client_auth
from signals_stream.kafka.log_start import log_starts
from signals_stream.kafka.partitioning import entity_partition
from signals_stream.kafka.topics import topic_partitions
from signals_stream.routing import entity_row_key
from signals_stream.settings import Settings
from signals_stream.sync.run import MAX_RECORD_BYTES
from signals_stream.warehouse import TableRef, open_warehouse
from signals_stream.worker_state import WorkerState

__all__ = [
    "PendingStates",
    "WarehouseBackfills",
    "add_warehouse_states",
    "register_warehouse_backfills",
    "warehouse_cut",
    "write_warehouse_states",
]

logger = logging.getLogger(__name__)

_CHECK_EVERY_S = 2.0
_CUT_POLL_S = 1.0
_LOAD_WAIT_S = 10.0  # between checks of the warehouse's load, while it is behind the cut


def _now_ms() -> int:
    return int(time.time() * 1000)


def _ordered(backfill: Backfill) -> bool:
    """The log's events must fold after the warehouse states: a TTL is judged in order."""
    return any(slot.retention_ms is not None for slot in backfill.program.slots)


async def warehouse_cut(settings: Settings, backfill: Backfill) -> int | None:
    """For a log task: the collector time below which the warehouse gives the events (None:
    the log gives everything). Waits until the coordinator decided, and for a backfill with
    a TTL until the warehouse states are sent (``engine.warehouse_states``, "TTLs")."""
    if not settings.backfill_from_warehouse:
        return None
    while True:
        part = (await read_warehouse_parts(settings)).get(backfill.id)
        if part is not None and part.decided:
            if part.cut_ms is None or part.state == "done" or not _ordered(backfill):
                return part.cut_ms
        await asyncio.sleep(_CUT_POLL_S)


class WarehouseBackfills:
    """Coordinates the warehouse parts of the backfills this worker owns."""

    def __init__(self, state: WorkerState) -> None:
        self._state = state
        self._running: dict[str, asyncio.Task[None]] = {}
        self._finished: set[str] = set()
        self._producer: AIOKafkaProducer | None = None

    async def check(self) -> None:
        state, settings = self._state, self._state.settings
        if not settings.backfill_from_warehouse or not state.ready():
            return
        catalog = state.live.catalog
        owned = state.entity_partitions()
        for bid, backfill in catalog.backfills.items():
            if bid in self._running or bid in self._finished or bid in state.backfills.cancelled:
                continue
            if entity_partition(bid.encode(), settings.partitions) not in owned:
                continue
            published = catalog.groups.get((backfill.group, backfill.version))
            if published is not None:
                self._running[bid] = asyncio.create_task(self._run(backfill, published))
        for bid in [b for b in self._running if b not in catalog.backfills]:
            self._running.pop(bid).cancel()

    async def _run(self, backfill: Backfill, published: PublishedGroup) -> None:
        try:
            part = (await read_warehouse_parts(self._state.settings)).get(backfill.id)
            if part is None or not part.decided:
                part = await self._decide(backfill, published)
            self._state.warehouse_backfills[backfill.id] = part
            if part.state not in ("log", "done"):
                await self._fill(backfill, published, part)
            self._finished.add(backfill.id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the warehouse or the broker: retried at the next check
            logger.error("warehouse backfill %s: %r (retrying)", backfill.id, exc)
            known = self._state.warehouse_backfills.get(backfill.id)
            if known is not None and known.cut_ms is not None:
                known.state, known.error = "failed", repr(exc)
                await self._write(known)
        finally:
            if self._running.get(backfill.id) is asyncio.current_task():
                del self._running[backfill.id]

    async def _decide(self, backfill: Backfill, published: PublishedGroup) -> WarehousePart:
        """The cut (or ``log``), written before any log task may start."""
        settings = self._state.settings
        auth = client_auth(settings)
        count = await topic_partitions(settings.bootstrap_servers, settings.input_topic, auth=auth)
        if count is None:
            raise RuntimeError(f"input topic {settings.input_topic!r} not found")
        starts = await log_starts(
            settings.bootstrap_servers, settings.input_topic, count, auth=auth
        )
        part = WarehousePart(
            backfill=backfill.id, group=backfill.group, version=backfill.version,
            since_ms=backfill.since_ms, state="log",
            log_starts_ms={str(p): t for p, t in sorted(starts.items())}, updated_ms=_now_ms(),
        )  # fmt: skip
        later = [t for t in starts.values() if t is not None and t > backfill.since_ms]
        why_not = why_not_from_warehouse(published.definition)
        if not later:
            part.note = "the log holds the whole range"
        elif backfill.until_ms is not None:  # an offset range of the log (engine.catalog)
            part.note = "from the log only (a range backfill): the log starts after the since time"
            logger.warning("warehouse backfill %s: %s", backfill.id, part.note)
        elif why_not is not None:
            part.note = f"from the log only ({why_not}): the log starts after the since time"
            logger.warning("warehouse backfill %s: %s", backfill.id, part.note)
        else:
            part.state = "waiting"
            part.cut_ms = max(t for t in starts.values() if t is not None) + 1
        await self._write(part)
        return part

    async def _fill(
        self, backfill: Backfill, published: PublishedGroup, part: WarehousePart
    ) -> None:
        """Wait for the warehouse to be loaded past the cut, compute, send, acknowledge."""
        settings = self._state.settings
        assert part.cut_ms is not None
        while True:
            began = time.monotonic()
            computed = await asyncio.to_thread(
                _compute, settings, published, backfill, part.since_ms, part.cut_ms
            )
            if computed is not None:
                break
            if part.state != "waiting" or part.note is None:
                part.state, part.note = "waiting", "the warehouse is not loaded up to the cut"
                await self._write(part)
            await asyncio.sleep(_LOAD_WAIT_S)
        part.state, part.note, part.error = "running", None, None
        part.seconds = round(time.monotonic() - began, 3)
        await self._write(part)
        producer = await self._producer_started()
        by_partition: dict[int, list[WarehouseStates]] = {}
        for item in computed:
            by_partition.setdefault(
                entity_partition(item.entity_id, settings.partitions), []
            ).append(item)
        acks = [
            await producer.send(self._state.topics.entity_events_name, record, partition=p)
            for p, items in by_partition.items()
            for record in encode_states_records(backfill.id, items, MAX_RECORD_BYTES)
        ]
        await asyncio.gather(*acks)  # a failed send raises: the part is retried
        part.state, part.entities = "done", len(computed)
        await self._write(part)
        logger.info(
            "warehouse backfill %s: states of %d entities below %d sent",
            backfill.id, len(computed), part.cut_ms,
        )  # fmt: skip

    async def _write(self, part: WarehousePart) -> None:
        part.updated_ms = _now_ms()
        self._state.warehouse_backfills[part.backfill] = part
        await write_warehouse_part(await self._producer_started(), self._state.settings, part)

    async def _producer_started(self) -> AIOKafkaProducer:
        """The coordinator's own producer (acks awaited per part), started on first use."""
        if self._producer is not None:
            return self._producer
        settings = self._state.settings
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap_servers, acks="all", **client_auth(settings)
        )
        await producer.start()
        self._producer = producer
        return producer

    async def stop(self) -> None:
        for running in list(self._running.values()):
            running.cancel()
        if self._producer is not None:
            await self._producer.stop()


def _compute(
    settings: Settings, published: PublishedGroup, backfill: Backfill, since_ms: int, cut_ms: int
) -> list[WarehouseStates] | None:
    """The states per entity over ``[since, cut)`` (None: the warehouse has loaded no event
    collected at or past the cut yet). Blocking: run in a thread."""
    group = published.definition
    slots = {a.name: a.slot.id for a in published.attributes}
    retention = {a.name: a.slot.retention_ms for a in published.attributes}
    filled = backfill.slot_ids
    with open_warehouse(settings.warehouse) as warehouse:
        events = parse_table_ref(settings.batch_events_table)
        if warehouse.engine != "duckdb":
            events = TableRef(None, events.schema, events.table)
        types = warehouse.columns(events)
        if not types:
            raise RuntimeError(f"events table {settings.batch_events_table} does not exist")
        table = EventsTable.of(events, types, warehouse.engine)
        ref = table.ref
        name = ".".join(
            f'"{part}"' for part in (ref.database, ref.schema, ref.table) if part is not None
        )
        ((newest,),) = warehouse.query(
            f'SELECT MAX("collector_tstamp") >= {_literal(cut_ms, warehouse.engine)} FROM {name}'
        )
        if not newest:
            return None
        builder = StatesBuilder(group)
        for query in backfill_queries(
            group, table, dialect=warehouse.engine, since_ms=since_ms, cut_ms=cut_ms,
            now_ms=_now_ms(), retention=retention,
        ):  # fmt: skip
            builder.add(query, warehouse.query(query.sql(warehouse.engine)))
    out: list[WarehouseStates] = []
    key_name = group.attribute_key.name
    for entity, by_name in builder.states().items():
        states: dict[str, Any] = {}
        updated: dict[str, int] = {}
        for name, (window_state, latest) in by_name.items():
            slot = slots.get(name)
            if slot is None or slot not in filled:
                continue
            states[slot] = window_state
            if latest is not None:
                updated[slot] = latest
        if states:
            out.append(WarehouseStates(key_name, entity.encode(), states, updated))
    return out


def _literal(ms: int, engine: str) -> str:
    from signals_stream.batch.compile import timestamp_literal

    return timestamp_literal(ms).sql(dialect=engine)


def register_warehouse_backfills(state: WorkerState) -> WarehouseBackfills:
    """A timer that coordinates the warehouse parts of this worker's backfills."""
    coordinator = WarehouseBackfills(state)
    state.app.timer(interval=_CHECK_EVERY_S)(coordinator.check)
    return coordinator


# (table partition, row key) -> (backfill id, slot states), in arrival order
PendingStates = dict[tuple[int, bytes], list[tuple[str, dict[str, Any], dict[str, int]]]]


def add_warehouse_states(
    pending: PendingStates, raw: bytes, partition: int, state: WorkerState
) -> bool:
    """Queue a warehouse states record's items by row; False when ``raw`` is not one."""
    try:
        decoded = decode_states_record(raw)
    except ValueError as exc:  # counted and logged, never stops the stream
        state.stats.warehouse_backfill_bad_records += 1
        logger.error("warehouse states record in partition %d skipped: %s", partition, exc)
        return True
    if decoded is None:
        return False
    backfill_id, items = decoded
    for item in items:
        row_key = entity_row_key(item.key_name, item.entity_id)
        pending.setdefault((partition, row_key), []).append(
            (backfill_id, item.states, item.updated)
        )
    return True


async def write_warehouse_states(state: WorkerState, pending: PendingStates) -> None:
    """Merge a batch's warehouse states into their rows (``engine.warehouse_states``); a
    backfill the catalog no longer has (unpublished, cancelled) is dropped."""
    if not pending:
        return
    backfills, rows, stats = state.live.catalog.backfills, state.rows, state.stats
    now_ms = _now_ms()
    for (partition, row_key), items in pending.items():
        row = decode_row(rows.get(partition, row_key))
        merged = False
        for backfill_id, states, updated in items:
            backfill = backfills.get(backfill_id)
            if backfill is None or backfill_id in state.backfills.cancelled:
                stats.warehouse_backfill_dropped += 1
            elif merge_warehouse_states(row, backfill, states, now_ms, updated):
                stats.warehouse_backfill_merged += 1
                merged = True
            else:
                stats.warehouse_backfill_replays += 1
        if merged:
            await rows.put(partition, row_key, encode_row(row))
    await rows.finish_batch()
