"""Warehouse groups' sync status (#16), from the sync-state topic, so every worker answers
the same whichever runs the group:

    GET /api/v1/registry/attribute_groups/{name}/versions/{v}/sync_status   one group version
    GET /api/v1/sync_status                          every published warehouse group version

Each body is ``sync.status.status_body``: the SDK's ``BatchSyncStatusResponse`` fields, then
the last run's start and end, rows read and sent, watermark, next run and last error.
"""

from __future__ import annotations

import time

from faust.web import Request, Response

from signals_stream.api.base import WorkerView, add_page, requires_token
from signals_stream.api.registry import path_version
from signals_stream.engine.synced import group_id
from signals_stream.errors import NotFoundError
from signals_stream.serving.responses import api_errors
from signals_stream.sync.state import read_statuses
from signals_stream.sync.status import status_body
from signals_stream.worker_state import WorkerState

__all__ = ["AllSyncStatusView", "SyncStatusView", "register_sync_status_views"]


class SyncStatusView(WorkerView):
    @requires_token
    @api_errors
    async def get(self, request: Request, name: str, version: str) -> Response:
        entry = self.state.registry.get("attribute_groups", name, path_version(version))
        group = entry.model
        if group.batch_source is None or not group.fields:
            raise NotFoundError(
                f"attribute group {name!r} is not a warehouse (external batch) group"
            )
        gid = group_id(group.name, group.version)
        status = (await read_statuses(self.state.settings)).get(gid)
        return self.json(status_body(group, status, int(time.time() * 1000)))


class AllSyncStatusView(WorkerView):
    @requires_token
    @api_errors
    async def get(self, request: Request) -> Response:
        stored = await read_statuses(self.state.settings)
        now_ms = int(time.time() * 1000)
        return self.json(
            {
                f"{name}:{version}": status_body(
                    synced.definition, stored.get(f"{name}:{version}"), now_ms
                )
                for (name, version), synced in sorted(self.state.live.catalog.synced.items())
            }
        )


def register_sync_status_views(state: WorkerState) -> None:
    add_page(
        state,
        "/api/v1/registry/attribute_groups/{name}/versions/{version}/sync_status",
        SyncStatusView,
    )
    add_page(state, "/api/v1/sync_status", AllSyncStatusView)
