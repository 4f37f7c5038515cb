"""``GET /api/v1/event_log``: one entity's agentic context, JSON or narrative. The row is read
where it lives (locally, or from the worker owning the id's partition, as attribute reads)."""

from __future__ import annotations

import time

from faust.web import Request, Response

from signals_stream.api.attributes import fetch_rows
from signals_stream.api.base import WorkerView, add_page, requires_token
from signals_stream.serving.agentic import parse_context_query, render_context
from signals_stream.serving.responses import api_errors
from signals_stream.worker_state import WorkerState

__all__ = ["EventLogView", "register_event_log_views"]


class EventLogView(WorkerView):
    @requires_token
    @api_errors
    async def get(self, request: Request) -> Response:
        catalog = self.state.live.catalog
        query = parse_context_query(request.query, catalog)
        rows, _ = await fetch_rows(
            self.state, {query.ref}, request.headers.get("Authorization", "")
        )
        body, content_type = render_context(
            query, catalog, rows.get(query.ref), int(time.time() * 1000)
        )
        # The header, not content_type=: aiohttp refuses a charset in content_type.
        return self.bytes(body, headers={"Content-Type": content_type})


def register_event_log_views(state: WorkerState) -> None:
    add_page(state, "/api/v1/event_log", EventLogView)
