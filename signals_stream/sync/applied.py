"""Backpressure for a sync run: at most a few chunks sent and not yet applied by the owners.

The broker acknowledges a sync record long before the owning worker applies it, and a
worker's consumer buffers thousands of records per partition, so a run that only waited for
acks could pile a whole table into the owners' memory. Before a new chunk, the run waits
until the workers' consumer group (``<app_id>``, Faust's) has committed past the records of
the chunk ``window`` chunks back: Faust commits an offset once the entities agent has
processed the records before it. A group that commits nothing for ``stall_s`` (no owner is
running) fails the run; the watermark stays at the last chunk acknowledged.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

from aiokafka import AIOKafkaConsumer, TopicPartition

from signals_stream.errors import Unavailable
from signals_stream.kafka.auth import client_auth
from signals_stream.settings import Settings

__all__ = ["AppliedWindow"]

_POLL_S = 0.2


class AppliedWindow:
    """The chunks in flight, oldest first; :meth:`room` waits for the oldest to be applied."""

    def __init__(
        self, settings: Settings, topic: str, *, window_rows: int = 50_000, stall_s: float = 300.0
    ) -> None:
        self._settings, self._topic = settings, topic
        self._window_rows, self._stall_s = window_rows, stall_s
        # Per chunk in flight: (rows, partition -> offset of its last record there).
        self._chunks: deque[tuple[int, dict[int, int]]] = deque()
        self._rows = 0
        self._consumer: AIOKafkaConsumer | None = None

    def sent(self, rows: int, offsets: dict[int, int]) -> None:
        if offsets:
            self._chunks.append((rows, offsets))
            self._rows += rows

    async def room(self) -> None:
        """Return once fewer than ``window_rows`` sent rows are unapplied."""
        if self._rows < self._window_rows:
            return
        consumer = await self._started()
        deadline = time.monotonic() + self._stall_s
        while self._rows >= self._window_rows:
            rows, oldest = self._chunks[0]
            parts = [TopicPartition(self._topic, p) for p in oldest]
            committed = await asyncio.gather(*(consumer.committed(tp) for tp in parts))
            if all((c or 0) > oldest[tp.partition] for tp, c in zip(parts, committed, strict=True)):
                self._chunks.popleft()
                self._rows -= rows
                deadline = time.monotonic() + self._stall_s
                continue
            if time.monotonic() > deadline:
                raise Unavailable(
                    f"sync records sent to {self._topic} were not applied for "
                    f"{self._stall_s:.0f} s: are the workers running?"
                )
            await asyncio.sleep(_POLL_S)

    async def _started(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            # The workers' group, only to read its committed offsets: never subscribed, so
            # it never joins the group nor commits.
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self._settings.bootstrap_servers,
                group_id=self._settings.app_id, enable_auto_commit=False,
                **client_auth(self._settings),
            )  # fmt: skip
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
