"""Bearer-token authentication for the HTTP API.

Every endpoint except the SSE subscription (``GET /api/v1/interventions``), ``/healthz`` and
``/metrics`` needs ``Authorization: Bearer <SIGNALS_API_TOKEN>``: the Signals SDKs' sandbox mode
(``SignalsSandbox(api_url, sandbox_token)``, Node ``sandboxToken``) sends exactly that. Without
a configured token the protected endpoints refuse every request rather than run open.
"""

from __future__ import annotations

import hmac

__all__ = ["bearer_token", "check_token"]


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
