"""Table views: an entity's attribute values for one published group, evaluated at read time.

    GET /tables/{group}/{version}/{key_value}
    GET /tables/{group}/{key_value}          (the latest published version)

Served by the worker that owns the entity's partition (proxied there from any worker).
"""

from __future__ import annotations

import time

from faust.web import Request, Response, View

from signals_stream.api.owner import route_to_owner
from signals_stream.app import app
from signals_stream.engine import read_group
from signals_stream.engine.installed import current_catalog
from signals_stream.engine.row import decode_row
from signals_stream.errors import NotFoundError
from signals_stream.routing.rekey import entity_row_key
from signals_stream.serving.auth import requires_token
from tables.entity_rows import entity_state

__all__ = ["GroupVersionView", "LatestGroupView"]


async def _respond(
    view: View, request: Request, group: str, version: int | None, key_value: str
) -> Response:
    try:
        published = current_catalog().group(group, version)
    except NotFoundError as exc:
        return view.json({"error": "not_found", "detail": str(exc)}, status=404)
    entity_id = key_value.encode()
    routed = await route_to_owner(app, entity_state, entity_id, view.web, request)
    if routed is not None:
        return routed
    raw = entity_state.get(entity_row_key(published.key_name, entity_id))
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


@app.page("/tables/{group}/{version}/{key_value}")
class GroupVersionView(View):
    @requires_token
    async def get(self, request: Request, group: str, version: str, key_value: str) -> Response:
        if not version.isdigit() or int(version) < 1:
            return self.json(
                {
                    "error": "bad_request",
                    "detail": f"version must be a positive integer, got {version!r}",
                },
                status=400,
            )
        return await _respond(self, request, group, int(version), key_value)


@app.page("/tables/{group}/{key_value}")
class LatestGroupView(View):
    @requires_token
    async def get(self, request: Request, group: str, key_value: str) -> Response:
        return await _respond(self, request, group, None, key_value)
