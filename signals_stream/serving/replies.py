"""Requests of this worker waiting for a reply that arrives through Kafka, by id: a push's
delivery receipt (``delivery/push.py``), a user deletion applied by the entities agent
(``serving/deletions.py``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Generic, TypeVar

__all__ = ["Replies"]

T = TypeVar("T")


class Replies(Generic[T]):
    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future[T]] = {}

    @contextlib.contextmanager
    def expecting(self, request_id: str) -> Iterator[asyncio.Future[T]]:
        """Wait for ``request_id``'s reply within the block (register before sending)."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        try:
            yield future
        finally:
            if self._waiting.get(request_id) is future:
                del self._waiting[request_id]

    def reply(self, request_id: str, value: T) -> bool:
        """Resolve ``request_id``'s wait. False when nothing of this worker waits for it (a
        request of another worker, or a reply that came too late)."""
        future = self._waiting.get(request_id)
        if future is None:
            return False
        if not future.done():
            future.set_result(value)
        return True

    @property
    def waiting(self) -> int:
        return len(self._waiting)
