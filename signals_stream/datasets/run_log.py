"""Dataset runs' records, in a compacted topic (``<app_id>-dataset-runs``), so every worker and
``signals-stream api`` answers for every run, and a restart keeps them.

One record per run, keyed ``run/<id>``: what :class:`RunRecord` holds (the request, status,
error, times, output table, row count, which process runs it and when it last said so).
``cancel/<id>`` asks the process running a run to stop it (that process reads the topic while
it has runs). The process running a run rewrites its record every :data:`HEARTBEAT_S`; a
``pending`` record whose heartbeat is older than :data:`STALE_S` belongs to a process that died
(SIGKILL, a crash, a restart): readers answer it ``failed`` with an error naming that process
(:meth:`RunRecord.as_of`). Such a run is not run again: its tables may be half written, and a
user resubmits it.
"""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson
from aiokafka import AIOKafkaProducer

from signals_stream.kafka.auth import client_auth
from signals_stream.kafka.compacted import ensure_state_topic, read_latest, write_latest
from signals_stream.settings import Settings

__all__ = [
    "HEARTBEAT_S",
    "STALE_S",
    "KafkaRunLog",
    "MemoryRunLog",
    "RunLog",
    "RunRecord",
    "dataset_runs_topic",
    "now_utc",
    "runner_name",
]

HEARTBEAT_S = 2.0
# Five missed heartbeats: longer than any event-loop stall a healthy worker has, short enough
# that a killed worker's run is reported within seconds. Compared on the reader's clock.
STALE_S = 10.0


def dataset_runs_topic(app_id: str) -> str:
    return f"{app_id}-dataset-runs"


def runner_name(settings: Settings) -> str:
    """This process, as a run's record names it: host, pid and web port."""
    return f"{socket.gethostname()}:{os.getpid()} (port {settings.web_port})"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


@dataclass(frozen=True)
class RunRecord:
    """A run as stored: enough for any process to answer its status and preview."""

    id: str
    status: str  # pending | success | failed
    dataset: dict[str, Any]  # the output table: database, schema, table
    request: dict[str, Any]  # the request as received (JSON)
    runner: str
    created_at: datetime
    heartbeat_at: datetime
    finished_at: datetime | None = None
    error: str | None = None
    row_count: int | None = None

    def to_json(self) -> bytes:
        body = asdict(self)
        for name in ("created_at", "heartbeat_at", "finished_at"):
            body[name] = _iso(getattr(self, name))
        return orjson.dumps(body)

    @classmethod
    def from_json(cls, raw: bytes) -> RunRecord:
        body = orjson.loads(raw)
        return cls(
            **{
                **body,
                "created_at": _time(body["created_at"]),
                "heartbeat_at": _time(body["heartbeat_at"]),
                "finished_at": _time(body.get("finished_at")),
            }
        )

    def as_of(self, now: datetime) -> RunRecord:
        """The record as a reader must answer it at ``now``: a pending run whose runner has
        not written for :data:`STALE_S` is failed."""
        if self.status != "pending" or now - self.heartbeat_at <= timedelta(seconds=STALE_S):
            return self
        error = (
            f"the process running this run ({self.runner}) stopped: no heartbeat since "
            f"{self.heartbeat_at.isoformat()} (killed or restarted); runs are not resumed, "
            "submit it again"
        )
        return replace(self, status="failed", error=error)

    def status_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "dataset": self.dataset,
            "created_at": self.created_at.isoformat(),
        }
        if self.finished_at is not None:
            body["finished_at"] = self.finished_at.isoformat()
        if self.error is not None:
            body["error"] = self.error
        if self.row_count is not None:
            body["row_count"] = self.row_count
        return body


class RunLog(Protocol):
    """Where run records live: written with the broker's acknowledgement, read whole."""

    async def write_run(self, record: RunRecord) -> None: ...

    async def write_cancel(self, run_id: str) -> None: ...

    async def read(self) -> tuple[dict[str, RunRecord], set[str]]:
        """Every run's latest record by id, and the ids asked to cancel."""
        ...

    async def close(self) -> None: ...


def _parse(latest: dict[str, bytes]) -> tuple[dict[str, RunRecord], set[str]]:
    runs = {
        key.removeprefix("run/"): RunRecord.from_json(value)
        for key, value in latest.items()
        if key.startswith("run/")
    }
    cancels = {key.removeprefix("cancel/") for key in latest if key.startswith("cancel/")}
    return runs, cancels


class KafkaRunLog:
    """The records in ``<app_id>-dataset-runs`` (one partition, compacted)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = dataset_runs_topic(settings.app_id)
        self._producer: AIOKafkaProducer | None = None

    async def _started(self) -> AIOKafkaProducer:
        if self._producer is None:
            await ensure_state_topic(self.settings, self.topic)
            producer = AIOKafkaProducer(
                bootstrap_servers=self.settings.bootstrap_servers,
                acks="all",
                **client_auth(self.settings),
            )
            await producer.start()
            self._producer = producer
        return self._producer

    async def write_run(self, record: RunRecord) -> None:
        await write_latest(await self._started(), self.topic, f"run/{record.id}", record.to_json())

    async def write_cancel(self, run_id: str) -> None:
        await write_latest(await self._started(), self.topic, f"cancel/{run_id}", b"{}")

    async def read(self) -> tuple[dict[str, RunRecord], set[str]]:
        return _parse(await read_latest(self.settings, self.topic))

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


class MemoryRunLog:
    """The same in a dict: for in-process tests, which have no broker."""

    def __init__(self) -> None:
        self.latest: dict[str, bytes] = {}

    async def write_run(self, record: RunRecord) -> None:
        self.latest[f"run/{record.id}"] = record.to_json()

    async def write_cancel(self, run_id: str) -> None:
        self.latest[f"cancel/{run_id}"] = b"{}"

    async def read(self) -> tuple[dict[str, RunRecord], set[str]]:
        return _parse(dict(self.latest))

    async def close(self) -> None:
        pass


def now_utc() -> datetime:
    return datetime.now(UTC)
