"""Table views: an entity's attribute values for one published group, evaluated at read time.

    GET /tables/{group}/{version}/{key_value}
    GET /tables/{group}/{key_value}          (the latest published version)

Served by the worker that owns the entity's partition (proxied there from any worker).
"""

from __future__ import annotations

import time

from faust.web import Request, Response

from signals_stream.api.base import WorkerView, add_page, requires_token
from signals_stream.api.owner import route_to_owner
from signals_stream.engine import read_group
from signals_stream.engine.row import decode_row
from signals_stream.errors import BadRequest
from signals_stream.kafka.partitioning import entity_partition
from signals_stream.routing import entity_row_key
from signals_stream.serving.responses import api_errors
from signals_stream.worker_state import WorkerState

__all__ = ["GroupVersionView", "LatestGroupView", "register_table_views"]


async def _respond(
    view: WorkerView, request: Request, group: str, version: int | None, key_value: str
) -> Response:
    state = view.state
    published = state.live.catalog.readable(group, version)  # NotFoundError: 404
    entity_id = key_value.encode()
    routed = await route_to_owner(state, entity_id, view.web, request)
    if routed is not None:
        return routed
    partition = entity_partition(entity_id, state.settings.partitions)
    raw = state.served_row(partition, entity_row_key(published.key_name, entity_id))
    now_ms = int(time.time() * 1000)
    return view.json(
        {
            "group": published.definition.name,
            "version": published.definition.version,
            "attribute_key": {"name": published.key_name, "id": key_value},
            "attributes": read_group(None if raw is None else decode_row(raw), published, now_ms),
            "evaluated_at_ms": now_ms,
        }
    )


class GroupVersionView(WorkerView):
    @requires_token
    @api_errors
    async def get(self, request: Request, group: str, version: str, key_value: str) -> Response:
        if not version.isdigit() or int(version) < 1:
            raise BadRequest(f"version must be a positive integer, got {version!r}")
        return await _respond(self, request, group, int(version), key_value)


class LatestGroupView(WorkerView):
    @requires_token
    @api_errors
    async def get(self, request: Request, group: str, key_value: str) -> Response:
        return await _respond(self, request, group, None, key_value)


def register_table_views(state: WorkerState) -> None:
    add_page(state, "/tables/{group}/{version}/{key_value}", GroupVersionView)
    add_page(state, "/tables/{group}/{key_value}", LatestGroupView)
