"""Requests to delete an entity's data, waiting for the entities agent to apply their marker
(``routing/deletions.py``): the request answers once the row is gone, with whether it was there."""

from __future__ import annotations

from signals_stream.serving.replies import Replies

__all__ = ["DeletionRequests"]


class DeletionRequests(Replies[bool]):
    def applied(self, request_id: str, found: bool) -> None:
        """The marker was applied here (a request of another worker, or a late one: ignored)."""
        self.reply(request_id, found)
