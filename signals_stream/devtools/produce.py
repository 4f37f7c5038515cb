"""Produce records to a topic fast, at an optional precise rate, with progress and a summary.

The producing side of ``signals-stream replay`` and ``generate --to-topic`` (and of ``dev``'s
live feed). Records are packed into per-partition record batches (aiokafka ``create_batch`` /
``send_batch``): 1.5-2x the throughput of one ``send()`` per record for ~2 KB records.
Keyed records go to the partition Kafka's default partitioner (murmur2) picks, the same one
Faust and every Java client pick; keyless records fill one partition's batch at a time
(sticky partitioning). Failures are counted, not raised, so one bad record never stops a
replay; the first error is logged.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

if TYPE_CHECKING:
    from aiokafka.producer.message_accumulator import BatchBuilder

from signals_stream.errors import ConfigurationError

__all__ = ["ProduceSummary", "TokenBucket", "produce_records"]

logger = logging.getLogger(__name__)

# ~2 KB enriched events: 256 KiB holds ~120 of them, big enough to amortise a produce request,
# small enough to stay far below any broker's message size limit (1 MiB by default).
BATCH_BYTES = 256 * 1024
# Partly filled batches leave at least this often, so slow or paced sources are not held back.
_FLUSH_EVERY_S = 0.02
_MIN_NAP_S = 0.002


@dataclass(frozen=True, slots=True)
class ProduceSummary:
    """What :func:`produce_records` did.

    Args:
        sent: records acknowledged by the broker.
        failed: records that could not be delivered.
        elapsed_s: wall time from the first record to the last acknowledgement.
    """

    sent: int
    failed: int
    elapsed_s: float

    @property
    def events_per_s(self) -> float:
        """Acknowledged records per second."""
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def describe(self) -> str:
        """One line for the terminal."""
        return (
            f"sent {self.sent:,}, failed {self.failed:,} in {self.elapsed_s:.1f}s "
            f"({self.events_per_s:,.0f} events/s)"
        )


class TokenBucket:
    """A token bucket on the monotonic clock: ``rate`` tokens per second, at most ``burst`` saved.

    It starts with one token, so ``n`` records take ``(n - 1) / rate`` seconds.

    Args:
        rate: tokens per second (> 0).
        burst: most tokens kept while the caller is busy; defaults to 50 ms worth (at least 1),
            so a short stall is caught up without a visible spike.
    """

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else rate * 0.05)
        self._tokens = 1.0
        self._last = time.monotonic()

    def try_take(self) -> bool:
        """Take one token if there is one."""
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def wait_s(self) -> float:
        """Seconds until the next token."""
        return max(0.0, (1.0 - self._tokens) / self.rate)


class _Progress:
    """A rich progress bar on stderr, fed with acknowledged + failed counts."""

    def __init__(self, topic: str, total: int | None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>9,.0f} ev/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self._task = self._progress.add_task(f"→ {topic}", total=total, rate=0.0)
        self._started = time.monotonic()
        self._progress.start()

    def update(self, done: int) -> None:
        elapsed = time.monotonic() - self._started
        rate = done / elapsed if elapsed > 0 else 0.0
        self._progress.update(self._task, completed=done, rate=rate)

    def close(self, done: int) -> None:
        self.update(done)
        self._progress.stop()


class _Sender:
    """Packs records into per-partition batches and tracks their delivery."""

    def __init__(self, producer: AIOKafkaProducer, topic: str, partitions: list[int]) -> None:
        self.producer = producer
        self.topic = topic
        self.partitions = partitions
        self.sent = 0
        self.failed = 0
        self.on_progress: Any = None
        self._partitioner = DefaultPartitioner()
        self._sticky = itertools.cycle(partitions)
        self._sticky_partition = next(self._sticky)
        self._open: dict[int, BatchBuilder] = {}
        self._pending: set[asyncio.Future[Any]] = set()
        self._first_error_logged = False

    async def add(self, key: bytes | None, value: bytes) -> None:
        if key is None:
            partition = self._sticky_partition
        else:
            partition = self._partitioner(key, self.partitions, self.partitions)
        batch = self._open.get(partition)
        if batch is None:
            batch = self._open[partition] = self.producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None) is not None:
            return
        # Full: ship it and start a new one, which always takes its first record.
        await self._submit(partition, batch)
        batch = self._open[partition] = self.producer.create_batch()
        batch.append(key=key, value=value, timestamp=None)

    async def flush_open(self) -> None:
        """Ship every partly filled batch."""
        for partition, batch in list(self._open.items()):
            if batch.record_count():
                await self._submit(partition, batch)
        self._open.clear()

    async def drain(self) -> None:
        """Ship everything and wait for every acknowledgement."""
        await self.flush_open()
        if self._pending:
            await asyncio.wait(set(self._pending))

    async def _submit(self, partition: int, batch: BatchBuilder) -> None:
        self._open.pop(partition, None)
        if partition == self._sticky_partition:
            self._sticky_partition = next(self._sticky)
        count = batch.record_count()
        try:
            # Waits while this partition already has a batch queued: that is the backpressure.
            future = await self.producer.send_batch(batch, self.topic, partition=partition)
        except KafkaError as exc:
            self._fail(count, exc)
            return
        self._pending.add(future)
        future.add_done_callback(lambda fut: self._done(fut, count))

    def _done(self, future: asyncio.Future[Any], count: int) -> None:
        self._pending.discard(future)
        if future.cancelled():
            self._fail(count, None)
        elif (exc := future.exception()) is not None:
            self._fail(count, exc)
        else:
            self.sent += count
        if self.on_progress is not None:
            self.on_progress(self.sent + self.failed)

    def _fail(self, count: int, exc: BaseException | None) -> None:
        self.failed += count
        if exc is not None and not self._first_error_logged:
            self._first_error_logged = True
            logger.error("producing to %s failed (%d records): %r", self.topic, count, exc)


async def produce_records(
    bootstrap: list[str],
    topic: str,
    records: Iterable[tuple[bytes | None, bytes]],
    *,
    rate: float | None = None,
    progress: bool = False,
    total: int | None = None,
    auth: Mapping[str, Any] | None = None,
) -> ProduceSummary:
    """Send ``(key, value)`` records to ``topic`` and wait for their acknowledgements.

    ``records`` is consumed lazily, one record per token when paced, so a generator that
    stamps events with the clock as they are pulled stays current. It may be endless: cancel
    the task to stop (records not yet shipped are dropped).

    Args:
        bootstrap: ``host:port`` servers.
        topic: destination; it must exist (see :func:`signals_stream.kafka.topics.ensure_topics`).
        records: ``(key, value)`` pairs; a None key spreads records over partitions.
        rate: records per second (token bucket); None sends as fast as possible.
        progress: show a progress bar on stderr.
        total: number of records, for the progress bar (None: unknown).
        auth: security keyword arguments (:func:`signals_stream.kafka.auth.client_auth`).

    Returns:
        The counts of acknowledged and failed records and the elapsed time.

    Raises:
        ConfigurationError: no broker answers, or the topic's partitions cannot be found.
    """
    # Tansu (the local broker) has no idempotent producer, and nothing here relies on one.
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=False,
        acks="all",  # the same cost as acks=1 on one broker; durable on a real cluster
        max_batch_size=BATCH_BYTES,
        linger_ms=5,
        client_id="signals-stream-produce",
        **(auth or {}),
    )
    try:
        await producer.start()
    except KafkaError as exc:
        await producer.stop()
        raise ConfigurationError(f"no Kafka broker answers at {bootstrap}: {exc!r}") from exc
    bar: _Progress | None = None
    sender: _Sender | None = None
    try:
        try:
            partitions = sorted(await producer.partitions_for(topic))
        except KafkaError as exc:
            raise ConfigurationError(f"topic {topic!r} is not available: {exc!r}") from exc
        sender = _Sender(producer, topic, partitions)
        if progress:
            bar = _Progress(topic, total)
            sender.on_progress = bar.update
        bucket = TokenBucket(rate) if rate else None
        started = last_flush = time.monotonic()
        for key, value in records:
            if bucket is not None:
                while not bucket.try_take():
                    if time.monotonic() - last_flush >= _FLUSH_EVERY_S:
                        await sender.flush_open()
                        last_flush = time.monotonic()
                    # A floor on the nap keeps high paced rates from waking per record.
                    await asyncio.sleep(max(bucket.wait_s(), _MIN_NAP_S))
            await sender.add(key, value)
            if time.monotonic() - last_flush >= _FLUSH_EVERY_S:
                await sender.flush_open()
                last_flush = time.monotonic()
        await sender.drain()
        elapsed = time.monotonic() - started
    finally:
        await producer.stop()
        if bar is not None and sender is not None:
            bar.close(sender.sent + sender.failed)
    summary = ProduceSummary(sent=sender.sent, failed=sender.failed, elapsed_s=elapsed)
    logger.info("produced to %s: %s", topic, summary.describe())
    return summary
