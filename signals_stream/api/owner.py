"""Send a per-entity request to the worker that owns the entity's partition."""

from __future__ import annotations

from faust.exceptions import SameNode
from faust.types import AppT, CollectionT
from faust.web import Request, Response, Web
from faust.web.exceptions import ServiceUnavailable

__all__ = ["route_to_owner", "service_unavailable"]


async def route_to_owner(
    app: AppT, table: CollectionT, routing_key: bytes, web: Web, request: Request
) -> Response | None:
    """Proxy the request to the owning worker; ``None`` when this worker owns the key.

    ``routing_key`` must be the exact bytes the entity's records are keyed by, otherwise the
    hash lands on another partition and most lookups go to the wrong worker.
    """
    try:
        return await app.router.route_req(table.name, routing_key, web, request)
    except SameNode:
        return None
    except (ServiceUnavailable, KeyError, TypeError):
        # Before the first assignment Faust has no partition map (KeyError/TypeError inside).
        return service_unavailable(web, "partitions are not assigned yet")


def service_unavailable(web: Web, why: str) -> Response:
    return web.json(
        {"error": "unavailable", "detail": why}, status=503, headers={"Retry-After": "1"}
    )
