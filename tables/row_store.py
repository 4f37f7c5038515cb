"""The storage seam: every use of Faust's RocksDB store internals lives in this module.

Entity rows are read and written by explicit partition number, straight in the partition's
RocksDB database, with one raw changelog record per write:

* ``table[key] = value`` costs about half a millisecond per write in Faust (a future message
  through the producer buffer, sensors, and a RocksDB put of the changelog offset on every
  acknowledgement), more than the whole engine step; ``Table.get`` adds a sensor call, a
  key-index update and a raised ``KeyError`` per new row. Faust's store still owns the
  databases, so recovery, standby replicas and routing are unchanged.
* Faust picks the partition of a table write from the stream's *current event*, which inside a
  batch is not the event the row belongs to (faust#497); here the caller names it.

The changelog records go out as whole record batches, one per partition per entity batch
(``kafka/batches.py``: a per-record send costs more than the RocksDB put); puts and deletes of
a partition join the same batch in call order, and ``finish_batch`` sends what is left. The
changelog offset is persisted once per partition per batch, from the acknowledgement of the
batch's last record. Faust flushes the producer before committing input offsets, so the
changelog never lags a commit. Pinned to faust-streaming 0.15.x: re-check on upgrade.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, Protocol, cast

import rocksdict
from aiokafka.structs import RecordMetadata
from faust.types import TP, AppT, TableT

from signals_stream.kafka.batches import BatchProducer, SentBatch, TopicBatches

__all__ = ["RowMirrorSink", "RowStore"]


class RowMirrorSink(Protocol):
    """Where written and deleted rows are copied (the Redis profiles store), or nothing."""

    def put(self, row_key: bytes, value: bytes, partition: int) -> None: ...

    def delete(self, row_key: bytes, partition: int) -> None: ...


class RowStore:
    """Get, put, delete and scan entity rows by table partition."""

    def __init__(self, app: AppT, table: TableT, mirror: RowMirrorSink | None = None) -> None:
        self._app = app
        self._table = table
        self._mirror = mirror
        self._changelog = table.changelog_topic.get_topic_name()
        self._batches: TopicBatches | None = None  # the changelog's, made on first use
        # Per partition, the last changelog offset acknowledged in this run, and the
        # partitions a send failed for (their database may hold a row the changelog does not).
        self._acked: dict[int, int] = {}
        self._failed: set[int] = set()

    @property
    def changelog_topic(self) -> str:
        return self._changelog

    def _store(self) -> Any:
        return self._table.data

    def owns(self, partition: int) -> bool:
        """Whether the partition's database is open here (assigned, active or standby)."""
        return partition in getattr(self._store(), "_dbs", {})

    def _db(self, partition: int) -> Any:
        # Faust's store opens the database of a partition on first use; an open one is a dict
        # lookup (two reads and a write per row: the method call cost ~2 us an event).
        store: Any = self._table.data
        db = store._dbs.get(partition)  # noqa: SLF001 - the seam
        return store._db_for_partition(partition) if db is None else db  # noqa: SLF001

    def get(self, partition: int, row_key: bytes) -> bytes | None:
        """The row under ``row_key`` in ``partition``, if any (for the partition's writer)."""
        value = self._db(partition).get(row_key)
        return None if value is None else bytes(value)

    def lookup(self, partition: int, row_key: bytes) -> bytes | None:
        """Like :meth:`get` for readers: never opens the database of a partition that is not
        open here (a partition this worker does not hold has no rows here)."""
        db = getattr(self._store(), "_dbs", {}).get(partition)
        value = None if db is None else db.get(row_key)
        return None if value is None else bytes(value)

    async def put(self, partition: int, row_key: bytes, value: bytes) -> None:
        """Store ``value`` under ``row_key`` in ``partition`` and its changelog (sent by the
        time :meth:`finish_batch` returns)."""
        self._db(partition).put(row_key, value)
        await self._log(partition, row_key, value)
        if self._mirror is not None:
            self._mirror.put(row_key, value, partition)

    async def delete(self, partition: int, row_key: bytes) -> None:
        """Delete ``row_key`` from ``partition``, with a changelog tombstone (a restore does
        not bring it back)."""
        self._db(partition).delete(row_key)
        await self._log(partition, row_key, None)
        if self._mirror is not None:
            self._mirror.delete(row_key, partition)

    async def _log(self, partition: int, row_key: bytes, value: bytes | None) -> None:
        if self._batches is None:
            producer = cast(BatchProducer, self._app.producer)
            self._batches = TopicBatches(producer, self._changelog)
        await self._batches.add(partition, row_key, value)

    async def finish_batch(self) -> None:
        """Send the changelog batches being filled; persist each partition's changelog offset
        once its last record is acknowledged."""
        if self._batches is None:
            return
        last: dict[int, SentBatch] = {}
        for sent in await self._batches.send():
            last[sent.partition] = sent
        for partition, sent in last.items():
            sent.future.add_done_callback(partial(self._persist, partition, sent.records))

    def _persist(self, partition: int, count: int, future: asyncio.Future[RecordMetadata]) -> None:
        if future.cancelled() or future.exception() is not None:
            self._failed.add(partition)
            return  # the send failed: Faust's producer flush fails the commit, nothing lost
        offset = future.result().offset + count - 1  # a batch's future: its first record's
        self._acked[partition] = max(offset, self._acked.get(partition, -1))
        # Only while this worker still owns the partition (a rebalance may have moved it).
        if self.owns(partition):
            self._store().set_persisted_offset(TP(self._changelog, partition), offset)

    # --- a clean stop and the next start (``tables.stop_manifest``) ------------------------

    @property
    def directory(self) -> Path:
        """Where the partitions' databases live."""
        return Path(self._store().path)

    def stop_offsets(self, partitions: Iterable[int]) -> Callable[[], dict[int, int]]:
        """Called as a stop begins (databases still open): a function to call once the
        producer is flushed, giving each of ``partitions``' last changelog offset its database
        holds (-1: none), leaving out partitions a send failed for."""
        persisted = {p: self.persisted_offset(p) for p in partitions if self.owns(p)}

        def offsets() -> dict[int, int]:
            return {
                p: max(self._acked.get(p, -1), -1 if last is None else last)
                for p, last in persisted.items()
                if p not in self._failed
            }

        return offsets

    def open_read_only(self, partition: int) -> rocksdict.Rdict | None:
        """A read-only handle on ``partition``'s database as the last run left it, if it
        exists (no lock taken: Faust's store may open the database beside it)."""
        path = self._store().partition_path(partition)
        if not Path(path).exists():
            return None
        return rocksdict.Rdict(
            str(path),
            options=rocksdict.Options(raw_mode=True),
            access_type=rocksdict.AccessType.read_only(),
        )

    # --- restoring from the changelog (``tables.restore``) ---------------------------------

    def persisted_offset(self, partition: int) -> int | None:
        """The last changelog offset applied to ``partition``'s database, if any."""
        return cast("int | None", self._store().persisted_offset(TP(self._changelog, partition)))

    def apply_changelog(
        self, partition: int, records: Iterable[tuple[bytes, bytes | None]], last_offset: int
    ) -> None:
        """Write changelog records (a None value deletes) to ``partition``'s database in one
        write batch, then record ``last_offset`` as applied (what Faust's recovery resumes
        from)."""
        batch = rocksdict.WriteBatch(raw_mode=True)
        for key, value in records:
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        self._db(partition).write(batch)
        self._store().set_persisted_offset(TP(self._changelog, partition), last_offset)

    def restore_on_assignment(self, restore: Callable[[list[int]], Awaitable[object]]) -> None:
        """Run ``restore(partitions)`` for the changelog partitions newly assigned here, after
        the store opened their databases and before Faust's recovery reads their offsets.

        Faust's recovery passes every changelog record through its conductor and queues (about
        130 us a record, 132 s for a million rows); ``tables.restore`` reads them with a plain
        consumer and writes batches, so the recovery that follows finds little left to read."""
        store = self._store()
        rebalance = store.on_rebalance

        async def on_rebalance(
            assigned: set[TP], revoked: set[TP], newly_assigned: set[TP], generation_id: int = 0
        ) -> None:
            await rebalance(assigned, revoked, newly_assigned, generation_id)
            mine = sorted(tp.partition for tp in newly_assigned if tp.topic == self._changelog)
            if mine:
                await restore(mine)

        store.on_rebalance = on_rebalance

    def scan(self, partition: int, after: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Every row of ``partition`` in key order, from the first key after ``after``.

        A snapshot iterator: rows may be written and deleted meanwhile. Empty when the
        partition is not open here. Faust's offset bookkeeping key is left out.
        """
        store = self._store()
        db = getattr(store, "_dbs", {}).get(partition)
        if db is None:
            return iter(())
        skip = getattr(store, "offset_key", None)
        items = db.items() if after is None else db.items(from_key=after)
        return (
            (bytes(key), bytes(value))
            for key, value in items
            if key != skip and (after is None or key != after)
        )
