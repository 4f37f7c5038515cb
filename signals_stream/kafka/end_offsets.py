"""End offsets as they really are, whatever the broker answers to "latest offset".

Tansu 0.6.0 (the embedded broker) answers ``ListOffsets(latest)`` with the last record
*batch*'s base offset + 1 instead of the high watermark: a partition whose last batch holds
five records looks four records short. Faust's changelog recovery trusts that answer (it
reads a partition up to it and checks the locally persisted offset against it), and so does
anything that waits to have "read a log to its end". :func:`verified_end_offsets` asks, then
reads each partition from the answer minus one: whatever records come back end the log. On a
broker that answers right (Apache Kafka, Redpanda) that is one record per partition, and the
answer is unchanged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

__all__ = ["offsets_from_time", "verified_end_offsets"]

logger = logging.getLogger(__name__)

_QUIET_MS = 100  # a fetch this long with nothing new: the partition's end is reached
_QUIET_ROUNDS = 3  # empty fetches in a row before a partition that returned nothing is done
_DEADLINE_S = 10.0  # past this, keep what was found (never less than the broker's answer)


async def verified_end_offsets(
    bootstrap: list[str],
    partitions: Collection[TopicPartition],
    *,
    auth: Mapping[str, Any] | None = None,
) -> dict[TopicPartition, int]:
    """The end offset (last offset + 1) of every partition, checked by reading its tail.

    Raises:
        aiokafka.errors.KafkaError: the broker cannot be reached.
    """
    if not partitions:
        return {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=_QUIET_MS,
        **(auth or {}),
    )
    await consumer.start()
    try:
        tps = list(partitions)
        consumer.assign(tps)
        reported: dict[TopicPartition, int] = dict(await consumer.end_offsets(tps))
        return await _read_tails(consumer, reported)
    finally:
        await consumer.stop()


async def _read_tails(
    consumer: AIOKafkaConsumer, reported: dict[TopicPartition, int]
) -> dict[TopicPartition, int]:
    ends = dict(reported)
    pending = {tp for tp, end in reported.items() if end > 0}
    for tp in pending:
        consumer.seek(tp, reported[tp] - 1)
    quiet: dict[TopicPartition, int] = dict.fromkeys(pending, 0)
    seen: set[TopicPartition] = set()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _DEADLINE_S
    while pending and loop.time() < deadline:
        batches = await consumer.getmany(*pending, timeout_ms=_QUIET_MS * 3)
        for tp in list(pending):
            records = batches.get(tp)
            if records:
                seen.add(tp)
                quiet[tp] = 0
                ends[tp] = max(ends[tp], records[-1].offset + 1)
                continue
            quiet[tp] += 1
            # Read something and then nothing more: the end. Nothing at all (the record
            # before the answer compacted or deleted away): the answer stands.
            if tp in seen or quiet[tp] >= _QUIET_ROUNDS:
                pending.discard(tp)
    if pending:
        logger.warning("end offsets not verified within %.0f s: %s", _DEADLINE_S, pending)
    short = {tp: (reported[tp], ends[tp]) for tp in ends if ends[tp] != reported[tp]}
    if short:
        logger.info("the broker reported short end offsets (reported, true): %s", short)
    return ends


async def offsets_from_time(
    consumer: AIOKafkaConsumer,
    ends: Mapping[TopicPartition, int],
    timestamp_ms: int,
    *,
    at_most: int,
) -> dict[TopicPartition, int]:
    """Per partition, the first offset at or after ``timestamp_ms`` (the broker's time index),
    but no more than ``at_most`` records before its end (``ends``: verified end offsets).

    Tansu answers "no record that late" with offset 0 and timestamp -1 instead of no offset,
    which taken as is would read the whole partition: a negative timestamp counts as "none"
    (the end). It also indexes by append time, not the records' own timestamps, so readers
    must still filter by timestamp.
    """
    found = await consumer.offsets_for_times(dict.fromkeys(ends, timestamp_ms))
    starts: dict[TopicPartition, int] = {}
    for tp, end in ends.items():
        hit = found.get(tp)
        start = end if hit is None or hit.timestamp < 0 else min(hit.offset, end)
        starts[tp] = max(start, end - at_most, 0)
    return starts
