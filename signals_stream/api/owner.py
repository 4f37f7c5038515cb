"""Send a per-entity request to the worker that owns the entity's partition.

Faust's ``router.route_req`` would do it, but it drops the request body and the answer's
headers (``Retry-After`` of a 503) and lets a dead owner's refused connection escape as a 500.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from faust.web import Request, Response, Web
from yarl import URL

from signals_stream.errors import OwnerUnavailable
from signals_stream.kafka.partitioning import entity_partition
from signals_stream.worker_state import WorkerState

__all__ = ["ask_worker", "owner_url", "route_to_owner"]

_PROXY_TIMEOUT = aiohttp.ClientTimeout(total=30, connect=3)
_KEPT_HEADERS = ("Retry-After", "X-Signals-Source", "X-Signals-Remote-Entities")


def owner_url(state: WorkerState, routing_key: bytes, *, write: bool = False) -> URL | None:
    """The web URL of the worker owning ``routing_key``'s partition; None for this worker.
    A read (not ``write``) of a partition served early (``agents.early_serving``) is this
    worker's while its join is pending; a write waits for the assignment.

    Raises:
        OwnerUnavailable: no partition map yet (before the first assignment).

    ``routing_key`` must be the exact bytes the entity's records are keyed by, otherwise the
    hash lands on another partition and most lookups go to the wrong worker.
    """
    if not write and state.serves_early(entity_partition(routing_key, state.settings.partitions)):
        return None  # served here from the previous run's copy until the join completes
    app = state.app
    try:
        url = URL(str(app.router.key_store(state.entity_rows.name, routing_key)))
    except (KeyError, TypeError) as exc:  # no partition map before the first assignment
        raise OwnerUnavailable("partitions are not assigned yet") from exc
    own = URL(str(app.conf.canonical_url))
    return None if (url.host, url.port) == (own.host, own.port) else url


async def route_to_owner(
    state: WorkerState, routing_key: bytes, web: Web, request: Request, *, write: bool = False
) -> Response | None:
    """Proxy the request to the owning worker; ``None`` when this worker owns the key.

    Raises:
        OwnerUnavailable: no partition map yet, or the owner cannot be reached (503).
    """
    url = owner_url(state, routing_key, write=write)
    if url is None:
        return None
    target = request.url.with_host(str(url.host)).with_port(url.port)
    body = await web.read_request_content(request)
    headers = {
        name: value
        for name, value in request.headers.items()
        if name.lower() in ("authorization", "content-type", "accept")
    }
    try:
        async with state.app.http_client.request(
            request.method, target, data=body or None, headers=headers, timeout=_PROXY_TIMEOUT
        ) as answer:
            content = await answer.read()
            kept = {h: answer.headers[h] for h in _KEPT_HEADERS if h in answer.headers}
            return web.bytes(
                content, content_type=answer.content_type, status=answer.status, headers=kept
            )
    except (OSError, TimeoutError, aiohttp.ClientError) as exc:
        raise OwnerUnavailable(f"the worker owning this id ({url}) is unreachable") from exc


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
