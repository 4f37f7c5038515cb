"""The in-process tier: a whole worker built by the composition root inside the test process.

``build_worker`` has no side effects, so a test builds one from explicit settings (a temporary
data directory, the example definitions) and drives its agents' steps and its views directly.
The tables are Faust's real RocksDB stores; only the Kafka producer is replaced, by one that
records what the worker sends (there is no broker in this tier: integration tests have one).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka.structs import RecordMetadata, TopicPartition

from signals_stream.kafka.partitioning import entity_partition
from signals_stream.settings import Settings
from signals_stream.worker import build_worker
from signals_stream.worker_state import WorkerState

EXAMPLES = Path(__file__).resolve().parents[2] / "signals_stream" / "examples" / "ecommerce.yaml"
TOKEN = "in-process-token"


class Sent(NamedTuple):
    topic: str
    key: bytes | None
    value: bytes | None
    partition: int | None
    headers: Any


class RecordedBatch:
    """Stands in for aiokafka's ``BatchBuilder``: the records appended, at most ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.records: list[tuple[bytes | None, bytes | None]] = []

    def append(self, *, timestamp: int | None, key: bytes | None, value: bytes | None) -> object:
        if len(self.records) >= self.limit:
            return None
        self.records.append((key, value))
        return len(self.records)

    def record_count(self) -> int:
        return len(self.records)


class RecordingProducer:
    """Stands in for the Kafka producer: every send is recorded, in order, and acknowledged at
    once with the next offset of its topic partition; a record batch (``send_batch``) is
    recorded as its records, in order, and acknowledged with its first record's offset."""

    batch_limit = 3  # records per batch: small, so that batches fill up in the tests

    def __init__(self, partitions: int = 4) -> None:
        self.partitions = partitions
        self.sent: list[Sent] = []
        self._offsets: dict[tuple[str, int], Iterator[int]] = {}

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
    ) -> asyncio.Future[RecordMetadata]:
        self.sent.append(Sent(topic, key, value, partition, headers))
        part = 0 if partition is None else partition
        offset = next(self._offsets.setdefault((topic, part), itertools.count()))
        done: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        done.set_result(RecordMetadata(topic, part, TopicPartition(topic, part), offset, -1, 0, 0))
        return done

    def create_batch(self) -> RecordedBatch:
        return RecordedBatch(self.batch_limit)

    async def send_batch(
        self, batch: RecordedBatch, topic: str, partition: int
    ) -> asyncio.Future[RecordMetadata]:
        futures = [
            await self.send(topic, key, value, partition, None, None)
            for key, value in batch.records
        ]
        return futures[0]

    async def partition_of(self, topic: str, key: bytes) -> int:
        return entity_partition(key, self.partitions)

    def key_partition(self, topic: str, key: bytes) -> TopicPartition:
        """As Faust's producer: Kafka's default partitioner (the router asks it for owners)."""
        return TopicPartition(topic, entity_partition(key, self.partitions))

    def to(self, topic: str) -> list[Sent]:
        return [s for s in self.sent if s.topic == topic]


def worker_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "api_token": TOKEN,
        "definitions": EXAMPLES,
        "partitions": 4,
        "redis_url": None,
    }
    return Settings(**(values | overrides))


@pytest.fixture
def worker(tmp_path: Path) -> WorkerState:
    state = build_worker(worker_settings(tmp_path))
    state.app.producer = RecordingProducer()  # type: ignore[assignment]
    return state


def producer_of(state: WorkerState) -> RecordingProducer:
    producer = state.app.producer
    assert isinstance(producer, RecordingProducer)
    return producer


@pytest.fixture
async def client(worker: WorkerState) -> AsyncIterator[TestClient]:
    """The worker's own aiohttp application (Faust's web driver), served on a free port."""
    web_app = worker.app.web.web_app  # type: ignore[attr-defined]
    async with TestClient(TestServer(web_app)) as test_client:
        yield test_client
