"""Requests to delete an entity's data, waiting for the entities agent to apply their marker
(``routing/deletions.py``): the request answers once the row is gone, with whether it was there."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

__all__ = ["DeletionRequests"]


class DeletionRequests:
    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future[bool]] = {}

    @contextlib.contextmanager
    def expecting(self, request_id: str) -> Iterator[asyncio.Future[bool]]:
        """Within the block, the future resolves to whether the row existed (register before
        sending the marker)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        try:
            yield future
        finally:
            if self._waiting.get(request_id) is future:
                del self._waiting[request_id]

    def applied(self, request_id: str, found: bool) -> None:
        """The marker was applied here (a request of another worker, or a late one: ignored)."""
        future = self._waiting.get(request_id)
        if future is not None and not future.done():
            future.set_result(found)
