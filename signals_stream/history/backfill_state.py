"""Backfill progress and control, in a compacted topic (``<app_id>-backfill``).

One record per task (one backfill over one input partition), keyed
``task/<backfill id>/<partition>``, written by the worker running it after each chunk's
entity-events records were acknowledged: a task that moves (a kill, a rebalance) resumes from
there, and ``signals-stream backfill status`` reads the same records. ``cancel/<backfill id>``
stops a backfill (what it merged stays).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import orjson
from aiokafka import AIOKafkaProducer

from signals_stream.kafka.compacted import read_latest, write_latest
from signals_stream.settings import Settings

__all__ = [
    "BackfillProgress",
    "BackfillTask",
    "backfill_topic",
    "read_backfill_state",
    "write_cancel",
    "write_task",
]

TaskState = Literal["running", "done", "cancelled"]


def backfill_topic(app_id: str) -> str:
    return f"{app_id}-backfill"


@dataclass
class BackfillTask:
    """One backfill's read of one input partition: ``[first, end)``, ``next`` still to read.

    Attributes:
        earliest_ms: set when the log no longer holds ``since_ms``: the time of its oldest
            record (what the backfill could start from).
        until_ms: a range backfill's end time (``end`` is then the partition's first record
            stamped at it, or the end as of the task's start if earlier).
    """

    backfill: str
    group: str
    version: int
    partition: int
    since_ms: int
    first: int
    end: int
    next: int
    read: int = 0  # records read (parsed or not) by every run of the task
    sent: int = 0  # entity events sent on the backfill road
    started_ms: int = 0
    updated_ms: int = 0
    earliest_ms: int | None = None
    state: TaskState = "running"
    until_ms: int | None = None

    @property
    def key(self) -> str:
        return f"task/{self.backfill}/{self.partition}"

    @property
    def remaining(self) -> int:
        return max(0, self.end - self.next)

    @property
    def total(self) -> int:
        return max(0, self.end - self.first)

    def eta_s(self) -> float | None:
        """Seconds left at the rate so far (None before any progress)."""
        done = self.next - self.first
        elapsed_s = (self.updated_ms - self.started_ms) / 1000
        if self.state != "running" or done <= 0 or elapsed_s <= 0:
            return None
        return round(self.remaining / (done / elapsed_s), 1)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "remaining": self.remaining, "eta_s": self.eta_s()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BackfillTask:
        data = {k: v for k, v in data.items() if k not in ("remaining", "eta_s")}
        return cls(**data)


@dataclass
class BackfillProgress:
    """What a worker knows of backfills: the tasks it runs or ran, and the cancelled ids."""

    tasks: dict[tuple[str, int], BackfillTask] = field(default_factory=dict)
    cancelled: set[str] = field(default_factory=set)

    def to_json(self) -> list[dict[str, Any]]:
        return [self.tasks[k].to_json() for k in sorted(self.tasks)]


async def read_backfill_state(settings: Settings) -> tuple[dict[str, BackfillTask], set[str]]:
    """Every task's latest record by key, and the cancelled backfill ids."""
    latest = await read_latest(settings, backfill_topic(settings.app_id))
    tasks = {
        key: BackfillTask.from_json(orjson.loads(value))
        for key, value in latest.items()
        if key.startswith("task/")
    }
    cancelled = {key.removeprefix("cancel/") for key in latest if key.startswith("cancel/")}
    return tasks, cancelled


async def write_task(producer: AIOKafkaProducer, settings: Settings, task: BackfillTask) -> None:
    await write_latest(
        producer, backfill_topic(settings.app_id), task.key, orjson.dumps(task.to_json())
    )


async def write_cancel(producer: AIOKafkaProducer, settings: Settings, backfill: str) -> None:
    await write_latest(producer, backfill_topic(settings.app_id), f"cancel/{backfill}", b"{}")
