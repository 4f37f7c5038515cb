"""Per warehouse group: the watermark and the last run's status, in a compacted topic.

``<app_id>-sync-state`` (one partition, compacted) holds one record per group version, keyed
``<group>:<version>``. Whoever runs a group's sync (a worker, or ``signals-stream sync``)
reads the topic to its verified end before the run and writes the watermark after each
chunk's sync records are acknowledged, so a restart neither misses nor re-reads rows, and the
status is the same from every process.
"""

from __future__ import annotations

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from signals_stream.kafka.auth import client_auth
from signals_stream.kafka.end_offsets import verified_end_offsets
from signals_stream.kafka.topics import TopicSpec, ensure_topics
from signals_stream.settings import Settings
from signals_stream.sync.status import SyncStatus

__all__ = ["SyncStatus", "read_statuses", "sync_state_topic", "write_status"]


def sync_state_topic(app_id: str) -> str:
    return f"{app_id}-sync-state"


async def ensure_state_topic(settings: Settings) -> None:
    spec = TopicSpec(
        sync_state_topic(settings.app_id), 1, compacted=True,
        replication_factor=settings.topic_replication_factor,
    )  # fmt: skip
    await ensure_topics(settings.bootstrap_servers, [spec], auth=client_auth(settings))


async def read_statuses(settings: Settings) -> dict[str, SyncStatus]:
    """Every group's latest status, read to the topic's verified end."""
    await ensure_state_topic(settings)
    auth = client_auth(settings)
    tp = TopicPartition(sync_state_topic(settings.app_id), 0)
    end = (await verified_end_offsets(settings.bootstrap_servers, [tp], auth=auth))[tp]
    statuses: dict[str, SyncStatus] = {}
    if end == 0:
        return statuses
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, group_id=None, enable_auto_commit=False,
        **auth,
    )  # fmt: skip
    await consumer.start()
    try:
        consumer.assign([tp])
        consumer.seek(tp, 0)
        while await consumer.position(tp) < end:
            for records in (await consumer.getmany(tp, timeout_ms=1000)).values():
                for record in records:
                    key = record.key.decode()
                    if record.value is None:
                        statuses.pop(key, None)
                    else:
                        statuses[key] = SyncStatus.from_json(orjson.loads(record.value))
    finally:
        await consumer.stop()
    return statuses


async def write_status(producer: AIOKafkaProducer, settings: Settings, status: SyncStatus) -> None:
    """Write ``status`` and wait for the broker's acknowledgement."""
    await producer.send_and_wait(
        sync_state_topic(settings.app_id), orjson.dumps(status.to_json()),
        key=status.group.encode(), partition=0,
    )  # fmt: skip
