"""Records of one topic gathered into whole record batches, one per partition (glue).

A per-record ``producer.send`` costs ~10 us of CPU in aiokafka (a future, a partitioner call
and a metadata object per record), more than the RocksDB put of the row it logs; an append
to a record batch ~2, and the batch has one future. The entity stage sends its changelog
records (``tables/row_store.py``) and its interventions (``agents/rows.py``) this way.

Records of one partition leave in the order they were added: a full batch is sent at once
(its successor waits until aiokafka took it off its queue), the rest by :meth:`send`.
"""

from __future__ import annotations

import asyncio
from typing import NamedTuple, Protocol

from aiokafka.structs import RecordMetadata

__all__ = ["BatchProducer", "RecordBatch", "SentBatch", "TopicBatches"]


class RecordBatch(Protocol):
    """A record batch being filled (aiokafka's ``BatchBuilder``)."""

    def append(self, *, timestamp: int | None, key: bytes | None, value: bytes | None) -> object:
        """None when the batch is full (a first record always fits)."""

    def record_count(self) -> int: ...


class BatchProducer(Protocol):
    """What batching needs of the app's producer (``kafka/transport.py: _Producer``)."""

    def create_batch(self) -> RecordBatch: ...

    async def send_batch(
        self, batch: RecordBatch, topic: str, partition: int
    ) -> asyncio.Future[RecordMetadata]: ...

    async def partition_of(self, topic: str, key: bytes) -> int: ...


class SentBatch(NamedTuple):
    """A batch handed to the producer: its acknowledgement carries the first record's
    offset; the last one's is that + ``records - 1``."""

    partition: int
    future: asyncio.Future[RecordMetadata]
    records: int


class TopicBatches:
    """The records of ``topic`` being gathered, one open batch per partition."""

    def __init__(self, producer: BatchProducer, topic: str) -> None:
        self._producer = producer
        self.topic = topic
        self._open: dict[int, RecordBatch] = {}
        self.sent: list[SentBatch] = []  # since the last ``take_sent``

    async def add(self, partition: int, key: bytes | None, value: bytes | None) -> None:
        """Append one record (``value`` None: a tombstone) to ``partition``'s open batch."""
        batch = self._open.get(partition)
        if batch is None:
            batch = self._open[partition] = self._producer.create_batch()
        if batch.append(timestamp=None, key=key, value=value) is None:  # full
            await self._send(partition, batch)
            batch = self._open[partition] = self._producer.create_batch()
            batch.append(timestamp=None, key=key, value=value)

    async def add_keyed(self, key: bytes, value: bytes) -> None:
        """Append one record to the partition Kafka's default partitioner gives ``key``."""
        await self.add(await self._producer.partition_of(self.topic, key), key, value)

    async def send(self) -> list[SentBatch]:
        """Send every open batch; every batch sent since the last call, in order."""
        open_batches, self._open = self._open, {}
        for partition, batch in open_batches.items():
            await self._send(partition, batch)
        sent, self.sent = self.sent, []
        return sent

    async def _send(self, partition: int, batch: RecordBatch) -> None:
        future = await self._producer.send_batch(batch, self.topic, partition)
        self.sent.append(SentBatch(partition, future, batch.record_count()))
