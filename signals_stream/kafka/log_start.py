"""Where each partition of a topic starts: its first retained record's time (the Kafka edge of
the warehouse backfill, ``agents/warehouse_backfill``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from signals_stream.errors import LogUnavailable
from signals_stream.kafka.end_offsets import verified_end_offsets

__all__ = ["log_starts"]

_FIRST_RECORD_WAIT_MS = 3000


async def log_starts(
    bootstrap: list[str], topic: str, partitions: int, *, auth: Mapping[str, Any] | None = None
) -> dict[int, int | None]:
    """Per partition, the timestamp of its first retained record (None: the partition is
    empty). Whatever was stamped before it is not in the log: never written there, or
    removed by retention.

    Raises:
        LogUnavailable: the broker cannot be reached or a record cannot be read.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, **(auth or {})
    )
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    try:
        await consumer.start()
        ends = await verified_end_offsets(bootstrap, tps, auth=auth)
        begins = await consumer.beginning_offsets(tps)
        found: dict[int, int | None] = {}
        consumer.assign(tps)
        for tp in tps:
            if begins[tp] >= ends[tp]:
                found[tp.partition] = None
                continue
            consumer.seek(tp, begins[tp])
            fetched = await consumer.getmany(tp, timeout_ms=_FIRST_RECORD_WAIT_MS, max_records=1)
            records = fetched.get(tp, [])
            if not records:
                raise LogUnavailable(f"{topic!r} partition {tp.partition}: no first record read")
            found[tp.partition] = int(records[0].timestamp)
        return found
    except KafkaError as exc:
        raise LogUnavailable(f"cannot read where {topic!r} starts: {exc!r}") from exc
    finally:
        await consumer.stop()
