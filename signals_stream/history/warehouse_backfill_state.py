"""The warehouse part of a backfill, in the backfill topic (``<app_id>-backfill``).

One record per backfill, keyed ``warehouse/<backfill id>``, written by the worker that
coordinates it (``agents/warehouse_backfill``). Its ``cut_ms`` is the seam every log task of
the backfill reads before it starts: events collected before the cut come from the warehouse,
the others from the log (``docs/semantics.md``, "Backfill from the warehouse").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from aiokafka import AIOKafkaProducer

from signals_stream.kafka.compacted import read_latest, write_latest
from signals_stream.settings import Settings

from .backfill_state import backfill_topic

__all__ = [
    "WarehousePart",
    "read_warehouse_parts",
    "write_warehouse_part",
]

# log: the log holds the whole range (or the warehouse part is off / not possible: ``note``);
# waiting: the warehouse has not loaded up to the cut yet; running: states being sent;
# done: every entity's states acknowledged; failed: ``error`` (retried).
PartState = Literal["log", "waiting", "running", "done", "failed"]


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


@dataclass
class WarehousePart:
    """Attributes:
    cut_ms: the cut-over (collector time, epoch ms), None when the log covers everything.
    log_starts_ms: per input partition, its first record's time (None: empty).
    """

    backfill: str
    group: str
    version: int
    since_ms: int
    state: PartState
    cut_ms: int | None = None
    log_starts_ms: dict[str, int | None] | None = None
    entities: int = 0  # entities whose states were sent
    seconds: float | None = None  # the warehouse query's duration
    note: str | None = None
    error: str | None = None
    updated_ms: int = 0

    @property
    def key(self) -> str:
        return f"warehouse/{self.backfill}"

    @property
    def decided(self) -> bool:
        """The cut is known: log tasks may start."""
        return self.state != "failed" or self.cut_ms is not None

    def describe(self) -> str:
        """One line for ``backfill status``."""
        cut = "-" if self.cut_ms is None else _iso(self.cut_ms)
        line = f"{self.backfill} warehouse: {self.state}, cut {cut}, {self.entities} entities"
        extra = self.error or self.note
        return f"{line} ({extra})" if extra else line

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WarehousePart:
        return cls(**data)


async def read_warehouse_parts(settings: Settings) -> dict[str, WarehousePart]:
    """Every backfill's warehouse part, by backfill id."""
    latest = await read_latest(settings, backfill_topic(settings.app_id))
    return {
        key.removeprefix("warehouse/"): WarehousePart.from_json(orjson.loads(value))
        for key, value in latest.items()
        if key.startswith("warehouse/")
    }


async def write_warehouse_part(
    producer: AIOKafkaProducer, settings: Settings, part: WarehousePart
) -> None:
    await write_latest(
        producer, backfill_topic(settings.app_id), part.key, orjson.dumps(part.to_json())
    )
