"""A small compacted state topic (one partition), read whole: latest value per key.

The sync engine's watermarks (``sync/state.py``) and backfill checkpoints
(``history/backfill_state.py``) are such topics: a handful of records, written after the
acknowledgements they vouch for, read to the *verified* end before a run and by the status
commands.
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from signals_stream.kafka.auth import client_auth
from signals_stream.kafka.end_offsets import verified_end_offsets
from signals_stream.kafka.topics import TopicSpec, ensure_topics
from signals_stream.settings import Settings

__all__ = ["ensure_state_topic", "read_latest", "write_latest"]


async def ensure_state_topic(settings: Settings, topic: str) -> None:
    spec = TopicSpec(topic, 1, compacted=True, replication_factor=settings.topic_replication_factor)
    await ensure_topics(settings.bootstrap_servers, [spec], auth=client_auth(settings))


async def read_latest(settings: Settings, topic: str) -> dict[str, bytes]:
    """Every key's latest value (a tombstone removes the key), to the verified end."""
    await ensure_state_topic(settings, topic)
    auth = client_auth(settings)
    tp = TopicPartition(topic, 0)
    end = (await verified_end_offsets(settings.bootstrap_servers, [tp], auth=auth))[tp]
    latest: dict[str, bytes] = {}
    if end == 0:
        return latest
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
                        latest.pop(key, None)
                    else:
                        latest[key] = record.value
    finally:
        await consumer.stop()
    return latest


async def write_latest(producer: AIOKafkaProducer, topic: str, key: str, value: bytes) -> None:
    """Write one key's value and wait for the broker's acknowledgement."""
    await producer.send_and_wait(topic, value, key=key.encode(), partition=0)
