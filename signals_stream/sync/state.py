"""Per warehouse group: the watermark and the last run's status, in a compacted topic.

``<app_id>-sync-state`` (one partition, compacted) holds one record per group version, keyed
``<group>:<version>``. Whoever runs a group's sync (a worker, or ``signals-stream sync``)
reads the topic to its verified end before the run and writes the watermark after each
chunk's sync records are acknowledged, so a restart neither misses nor re-reads rows, and the
status is the same from every process.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from signals_stream.kafka.compacted import read_latest, write_latest
from signals_stream.settings import Settings
from signals_stream.warehouse import Watermark

__all__ = ["SyncStatus", "read_statuses", "sync_state_topic", "write_status"]


def sync_state_topic(app_id: str) -> str:
    return f"{app_id}-sync-state"


@dataclass
class SyncStatus:
    """One group version's sync: where it stands and how its last run went."""

    group: str  # "<name>:<version>"
    watermark_ms: int | None = None
    watermark_id: str | None = None
    last_started_ms: int | None = None
    last_finished_ms: int | None = None
    rows_read: int = 0  # by the last run
    rows_sent: int = 0
    total_rows_sent: int = 0
    last_error: str | None = None
    running: bool = False

    @property
    def watermark(self) -> Watermark | None:
        if self.watermark_ms is None or self.watermark_id is None:
            return None
        return Watermark(self.watermark_ms, self.watermark_id)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


async def read_statuses(settings: Settings) -> dict[str, SyncStatus]:
    """Every group's latest status, read to the topic's verified end."""
    latest = await read_latest(settings, sync_state_topic(settings.app_id))
    return {key: SyncStatus(**orjson.loads(value)) for key, value in latest.items()}


async def write_status(producer: AIOKafkaProducer, settings: Settings, status: SyncStatus) -> None:
    """Write ``status`` and wait for the broker's acknowledgement."""
    await write_latest(
        producer, sync_state_topic(settings.app_id), status.group, orjson.dumps(status.to_json())
    )
