"""Forward a request to a worker (``SIGNALS_WORKER_URL``): retrievals the profiles store cannot
answer, and registry writes, which only workers make."""

from __future__ import annotations

import aiohttp
from aiohttp import web
from yarl import URL

from signals_stream.errors import Unavailable

__all__ = ["SOURCE_HEADER", "WorkerProxy", "WorkerUnavailable"]

# Which store answered a read: "redis" or "worker".
SOURCE_HEADER = "X-Signals-Source"


class WorkerUnavailable(Unavailable):
    """The worker to forward to cannot be reached."""


class WorkerProxy:
    """One worker's base URL; the caller's bearer token is passed on unchanged."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession) -> None:
        self.base_url = URL(base_url)
        self._session = session

    async def forward(self, request: web.Request, body: bytes | None = None) -> web.Response:
        """The worker's answer to the same method, path, query and body.

        Raises:
            WorkerUnavailable: the worker cannot be reached.
        """
        url = self.base_url.join(URL(request.path_qs))
        headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
        if "Authorization" in request.headers:
            headers["Authorization"] = request.headers["Authorization"]
        data = body if body is not None else await request.read()
        try:
            async with self._session.request(
                request.method, url, data=data or None, headers=headers
            ) as response:
                payload = await response.read()
                passed = {SOURCE_HEADER: "worker"}
                if "Retry-After" in response.headers:
                    passed["Retry-After"] = response.headers["Retry-After"]
                return web.Response(
                    body=payload,
                    status=response.status,
                    content_type=response.content_type,
                    headers=passed,
                )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise WorkerUnavailable(
                f"the worker at {self.base_url} cannot be reached: {exc}"
            ) from exc
