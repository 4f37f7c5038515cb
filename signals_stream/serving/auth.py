"""Bearer-token authentication for the HTTP API.

Every endpoint except the SSE subscription (``GET /api/v1/interventions``), ``/healthz`` and
``/metrics`` needs ``Authorization: Bearer <SIGNALS_API_TOKEN>``: the Signals SDKs' sandbox mode
(``SignalsSandbox(api_url, sandbox_token)``, Node ``sandboxToken``) sends exactly that. Without
a configured token the protected endpoints refuse every request rather than run open.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from faust.web import Request, Response, View

__all__ = ["bearer_token", "check_token", "requires_token"]

P = ParamSpec("P")
V = TypeVar("V", bound=View)

_configured: bytes | None = None
_loaded = False


def _token() -> bytes | None:
    global _configured, _loaded
    if not _loaded:
        from signals_stream.app import settings

        secret = settings.api_token
        _configured = secret.get_secret_value().encode() if secret is not None else None
        _loaded = True
    return _configured


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def check_token(authorization: str | None, expected: bytes | None) -> str | None:
    """Why the request is refused (a message), or None when ``authorization`` carries
    ``expected``. Compared in constant time."""
    if expected is None:
        return "this server has no SIGNALS_API_TOKEN configured; set one to use the API"
    given = bearer_token(authorization)
    if given is None:
        return "missing bearer token: send 'Authorization: Bearer <SIGNALS_API_TOKEN>'"
    if not hmac.compare_digest(given.encode(), expected):
        return "invalid bearer token"
    return None


def requires_token(
    handler: Callable[Concatenate[V, Request, P], Awaitable[Response]],
) -> Callable[Concatenate[V, Request, P], Awaitable[Response]]:
    """Decorate a view method: 401 with a JSON error unless the request has the token."""

    @functools.wraps(handler)
    async def checked(self: V, request: Request, *args: P.args, **kwargs: P.kwargs) -> Response:
        refused = check_token(request.headers.get("Authorization"), _token())
        if refused is not None:
            return unauthorized(self, refused)
        return await handler(self, request, *args, **kwargs)

    return checked


def unauthorized(view: View, detail: str) -> Response:
    body: dict[str, Any] = {"error": "unauthorized", "detail": detail}
    return view.json(body, status=401, headers={"WWW-Authenticate": 'Bearer realm="signals"'})
