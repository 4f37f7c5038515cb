"""Per warehouse group: the watermark and the last run's status, in a compacted topic.

``<app_id>-sync-state`` (one partition, compacted) holds one record per group version, keyed
``<group>:<version>``. Whoever runs a group's sync (a worker, or ``signals-stream sync``)
reads the topic to its verified end before the run and writes the watermark after each
chunk's sync records are acknowledged, so a restart neither misses nor re-reads rows, and the
status is the same from every process.
"""

from __future__ import annotations

import orjson
from aiokafka import AIOKafkaProducer

from signals_stream.kafka.compacted import read_latest, write_latest
from signals_stream.settings import Settings
from signals_stream.sync.status import SyncStatus

__all__ = ["SyncStatus", "read_statuses", "sync_state_topic", "write_status"]


def sync_state_topic(app_id: str) -> str:
    return f"{app_id}-sync-state"


async def read_statuses(settings: Settings) -> dict[str, SyncStatus]:
    """Every group's latest status, read to the topic's verified end."""
    latest = await read_latest(settings, sync_state_topic(settings.app_id))
    return {key: SyncStatus.from_json(orjson.loads(value)) for key, value in latest.items()}


async def write_status(producer: AIOKafkaProducer, settings: Settings, status: SyncStatus) -> None:
    """Write ``status`` and wait for the broker's acknowledgement."""
    await write_latest(
        producer, sync_state_topic(settings.app_id), status.group, orjson.dumps(status.to_json())
    )
