"""Read a topic's records from a point in time to its end: the edge of test(), the
intervention preview and backfill.

A plain consumer without a group (it commits nothing and joins no group, so the stream's
offsets and assignments are untouched) asks the broker which offset of every partition holds
the first record stamped at or after the start (``offsets_for_times``), reads each partition
from there to its *verified* end as of the start of the read (``verified_end_offsets``:
Tansu reports end offsets short), and hands back batches of records. Records are filtered by
their own timestamp as well, because a broker may answer the lookup early: Tansu 0.6 answers
offset 0 to every timestamp, which costs reading, never correctness.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from signals_stream.errors import LogUnavailable
from signals_stream.kafka.end_offsets import verified_end_offsets

__all__ = ["LogRecord", "LogWindow", "PartitionStart", "log_earliest_ms", "partition_start",
           "read_log_range", "read_log_window"]  # fmt: skip

_FETCH_WAIT_MS = 100
_PROBE_ATTEMPTS = 5
_POLL_RECORDS = 500  # small slices: the reader shares the worker's event loop
_IDLE_POLLS = 50  # empty polls in a row (each up to 3 fetch waits) before giving up


class LogRecord(NamedTuple):
    """One record of the window."""

    partition: int
    offset: int
    timestamp_ms: int
    value: bytes


@dataclass
class LogWindow:
    """Where a read stands, for progress and for the bounds' messages.

    Attributes:
        ranges: partition -> ``(first offset to read, end offset)``.
        read: records fetched so far (in the window or not).
        in_window: records fetched whose timestamp is at or after the start.
    """

    topic: str
    start_ms: int
    ranges: dict[int, tuple[int, int]] = field(default_factory=dict)
    read: int = 0
    in_window: int = 0

    @property
    def total(self) -> int:
        """Records between the first offsets and the ends: what the read fetches at most."""
        return sum(end - first for first, end in self.ranges.values())


def _consumer(bootstrap: list[str], auth: Mapping[str, Any] | None) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=_FETCH_WAIT_MS,
        max_poll_records=_POLL_RECORDS,
        **(auth or {}),
    )


async def _start(consumer: AIOKafkaConsumer, topic: str) -> None:
    try:
        await consumer.start()
    except KafkaError as exc:
        raise LogUnavailable(f"the broker cannot be reached to read {topic!r}: {exc!r}") from exc


async def read_log_window(
    bootstrap: list[str],
    topic: str,
    start_ms: int,
    *,
    auth: Mapping[str, Any] | None = None,
    on_start: Callable[[LogWindow], None] | None = None,
) -> AsyncGenerator[list[LogRecord], None]:
    """Batches of the records of ``topic`` stamped at or after ``start_ms``, every partition,
    up to each partition's end when the read began. The caller bounds the read (it may stop
    iterating at any time; the consumer is closed then).

    Args:
        on_start: called once with the :class:`LogWindow` when the ranges are known; the same
            object's counters move as batches are handed out.

    Raises:
        LogUnavailable: the broker cannot be reached or the topic does not exist.
    """
    consumer = _consumer(bootstrap, auth)
    try:
        await _start(consumer, topic)
        window = LogWindow(topic, start_ms)
        window.ranges = await _ranges(consumer, bootstrap, topic, start_ms, auth)
        if on_start is not None:
            on_start(window)
        async for batch in _read(consumer, window):
            yield batch
    finally:  # also when a bound cancels the read, even during start()
        await consumer.stop()


async def read_log_range(
    bootstrap: list[str],
    topic: str,
    ranges: Mapping[int, tuple[int, int]],
    start_ms: int,
    *,
    auth: Mapping[str, Any] | None = None,
) -> AsyncGenerator[list[LogRecord], None]:
    """Like :func:`read_log_window` over given ``partition -> (first, end)`` offsets (a
    backfill task resuming from its checkpoint); records stamped before ``start_ms`` are
    skipped but counted in nothing."""
    consumer = _consumer(bootstrap, auth)
    try:
        await _start(consumer, topic)
        window = LogWindow(topic, start_ms, dict(ranges))
        async for batch in _read(consumer, window):
            yield batch
    finally:
        await consumer.stop()


class PartitionStart(NamedTuple):
    """Where a read of one partition from a time starts and ends.

    ``earliest_ms``: when the log does not hold the start (the first retained record is the
    lookup's answer and is stamped later: retention removed the start, or the topic began
    after it), that record's time; else None."""

    first: int
    end: int
    earliest_ms: int | None


async def partition_start(
    bootstrap: list[str],
    topic: str,
    partition: int,
    start_ms: int,
    *,
    until_ms: int | None = None,
    auth: Mapping[str, Any] | None = None,
) -> PartitionStart:
    """The offset of the first record stamped at or after ``start_ms`` and the verified end
    of one partition; with ``until_ms``, the end is the first record stamped at or after it.
    Both are found from the records' own timestamps (:func:`_first_stamped_at`), never the
    broker's time index, because a backfill reads ``[first, end)`` whole.

    Raises:
        LogUnavailable: the broker cannot be reached or the partition does not exist.
    """
    consumer = _consumer(bootstrap, auth)
    tp = TopicPartition(topic, partition)
    try:
        await _start(consumer, topic)
        try:
            end = (await verified_end_offsets(bootstrap, [tp], auth=auth))[tp]
            begin = (await consumer.beginning_offsets([tp]))[tp]
            # The block is taken whole (no per-record filter: a record skipped inside the
            # overlap with the live road would be lost there), so its ends come from the
            # records' own timestamps: some brokers (Tansu) index append time.
            consumer.assign([tp])
            first = await _first_stamped_at(consumer, tp, begin, end, start_ms)
            if until_ms is not None:
                end = await _first_stamped_at(consumer, tp, first, end, until_ms)
        except KafkaError as exc:
            raise LogUnavailable(f"cannot look up the offsets of {topic!r}: {exc!r}") from exc
        earliest = None
        if first == begin < end:
            record = await _record_at(consumer, tp, begin, attempts=1)
            if record is not None and record.timestamp > start_ms:
                earliest = record.timestamp
        return PartitionStart(first, end, earliest)
    finally:
        await consumer.stop()


async def _first_stamped_at(
    consumer: AIOKafkaConsumer, tp: TopicPartition, low: int, high: int, timestamp_ms: int
) -> int:
    """The first offset in ``[low, high)`` whose record is stamped at or after
    ``timestamp_ms`` (``high`` if none), by bisection over the records themselves: exact when
    the partition's timestamps do not decrease (a producer's order, or Enrich's), the boundary
    between an earlier and a later record otherwise. Needs ``tp`` assigned."""
    while low < high:
        middle = (low + high) // 2
        # below the verified end a record exists: an empty answer is a slow fetch, retried
        record = await _record_at(consumer, tp, middle, attempts=_PROBE_ATTEMPTS)
        if record is None or record.offset >= high or record.timestamp >= timestamp_ms:
            high = middle  # (None or past ``high``: nothing from here, a compacted gap)
        else:
            low = record.offset + 1
    return low


async def _record_at(
    consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int, *, attempts: int
) -> ConsumerRecord[bytes, bytes] | None:
    """The first record at or after ``offset`` (``tp`` assigned), or None after ``attempts``
    empty fetches."""
    consumer.seek(tp, offset)
    for _ in range(attempts):
        fetched = await consumer.getmany(tp, timeout_ms=_FETCH_WAIT_MS * 30, max_records=1)
        if records := fetched.get(tp, []):
            return records[0]
    return None


async def log_earliest_ms(
    bootstrap: list[str],
    topic: str,
    partitions: int,
    start_ms: int,
    *,
    auth: Mapping[str, Any] | None = None,
) -> int | None:
    """The earliest time from which the log holds ``topic`` when that is after ``start_ms``
    (the latest of the partitions' :attr:`PartitionStart.earliest_ms`), else None.

    Raises:
        LogUnavailable: the broker cannot be reached or a partition does not exist.
    """
    starts = await asyncio.gather(
        *(partition_start(bootstrap, topic, p, start_ms, auth=auth) for p in range(partitions))
    )
    found = [s.earliest_ms for s in starts if s.earliest_ms is not None]
    return max(found) if found else None


async def _ranges(
    consumer: AIOKafkaConsumer,
    bootstrap: list[str],
    topic: str,
    start_ms: int,
    auth: Mapping[str, Any] | None,
) -> dict[int, tuple[int, int]]:
    try:
        await consumer.topics()  # fills the metadata
        numbers = consumer.partitions_for_topic(topic)
        if not numbers:
            raise LogUnavailable(f"topic {topic!r} does not exist or has no partitions")
        tps = [TopicPartition(topic, p) for p in sorted(numbers)]
        ends = await verified_end_offsets(bootstrap, tps, auth=auth)
        found = await consumer.offsets_for_times(dict.fromkeys(tps, start_ms))
    except KafkaError as exc:
        raise LogUnavailable(f"cannot look up the offsets of {topic!r}: {exc!r}") from exc
    ranges: dict[int, tuple[int, int]] = {}
    for tp in tps:
        at = found.get(tp)
        end = ends[tp]
        # None: no record stamped at or after the start. An answer past the verified end
        # (a record produced since) is cut there: the read stops at the ends as of now.
        first = end if at is None else min(at.offset, end)
        ranges[tp.partition] = (first, end)
    return ranges


async def _read(consumer: AIOKafkaConsumer, window: LogWindow) -> AsyncIterator[list[LogRecord]]:
    topic = window.topic
    pending = {
        TopicPartition(topic, partition): end
        for partition, (first, end) in window.ranges.items()
        if first < end
    }
    consumer.assign(list(pending))
    for tp in pending:
        consumer.seek(tp, window.ranges[tp.partition][0])
    idle = 0
    while pending:
        try:
            fetched = await consumer.getmany(*pending, timeout_ms=_FETCH_WAIT_MS * 3)
        except KafkaError as exc:
            raise LogUnavailable(f"reading {topic!r} failed: {exc!r}") from exc
        batch: list[LogRecord] = []
        for tp, records in fetched.items():
            if tp not in pending:
                continue
            end = pending[tp]
            for record in records:
                if record.offset >= end:
                    break
                window.read += 1
                if record.timestamp >= window.start_ms and record.value is not None:
                    batch.append(
                        LogRecord(tp.partition, record.offset, record.timestamp, record.value)
                    )
            if records and records[-1].offset + 1 >= end:
                del pending[tp]
        window.in_window += len(batch)
        idle = 0 if fetched else idle + 1
        if idle >= _IDLE_POLLS:  # the verified end was there; something deleted it meanwhile
            raise LogUnavailable(
                f"{topic!r}: partitions {sorted(tp.partition for tp in pending)} returned "
                "nothing before their end offsets (retention deleted them while reading?)"
            )
        yield batch
        await asyncio.sleep(0)  # let the stream's tasks run between slices
