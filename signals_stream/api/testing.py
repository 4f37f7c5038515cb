"""``POST /api/v1/testing/attribute_groups/``: the SDK's ``test()``, from the input log.

Any worker answers: the read is a plain consumer of the input topic outside every group, the
fold runs on a catalog of its own, and nothing is written (no state, registry or offsets).
"""

from __future__ import annotations

import time

from faust.web import Request, Response

from signals_stream.api.base import WorkerView, add_page, requires_token
from signals_stream.history.group_test import run_group_test
from signals_stream.history.requests import GroupTestRequest
from signals_stream.serving.responses import api_errors, json_body, ok
from signals_stream.worker_state import WorkerState

__all__ = ["GroupTestView", "register_history_views"]


class GroupTestView(WorkerView):
    @requires_token
    @api_errors
    async def post(self, request: Request) -> Response:
        query = GroupTestRequest.parse(await json_body(request))
        keys = [entry.model for entry in self.state.registry.list("attribute_keys")]
        columns = await run_group_test(
            query, self.state.settings, keys, now_ms=int(time.time() * 1000)
        )
        return ok(self, columns)


def register_history_views(state: WorkerState) -> None:
    add_page(state, "/api/v1/testing/attribute_groups/", GroupTestView)
