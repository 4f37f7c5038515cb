"""Send a per-entity request to the worker that owns the entity's partition."""

from __future__ import annotations

from typing import Any

import aiohttp
from faust.exceptions import SameNode
from faust.web import Request, Response, Web
from faust.web.exceptions import ServiceUnavailable
from yarl import URL

from signals_stream.errors import OwnerUnavailable
from signals_stream.worker_state import WorkerState

__all__ = ["ask_worker", "route_to_owner"]


async def route_to_owner(
    state: WorkerState, routing_key: bytes, web: Web, request: Request
) -> Response | None:
    """Proxy the request to the owning worker; ``None`` when this worker owns the key.

    Raises:
        OwnerUnavailable: no partition map yet (before the first assignment).

    ``routing_key`` must be the exact bytes the entity's records are keyed by, otherwise the
    hash lands on another partition and most lookups go to the wrong worker.
    """
    try:
        return await state.app.router.route_req(state.entity_rows.name, routing_key, web, request)
    except SameNode:
        return None
    except (ServiceUnavailable, KeyError, TypeError) as exc:
        # Before the first assignment Faust has no partition map (KeyError/TypeError inside).
        raise OwnerUnavailable("partitions are not assigned yet") from exc


async def ask_worker(
    state: WorkerState, url: URL, path: str, body: Any, authorization: str, *, what: str
) -> Any:
    """POST ``body`` to another worker's internal ``path`` with the caller's token; its JSON.

    Raises:
        OwnerUnavailable: the worker is unreachable or did not answer 200 (``what`` says for
            which request).
    """
    try:
        async with state.app.http_client.post(
            url.with_path(path), json=body, headers={"Authorization": authorization}
        ) as response:
            if response.status != 200:
                raise OwnerUnavailable(
                    f"worker {url} answered {response.status} for {what}: "
                    f"{(await response.text())[:200]}"
                )
            return await response.json()
    except (OSError, TimeoutError, aiohttp.ClientError) as exc:
        raise OwnerUnavailable(f"worker {url} is unreachable for {what}") from exc
