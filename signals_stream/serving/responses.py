"""JSON responses and error mapping shared by the API views."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

import orjson
from faust.web import Request, Response, View

from signals_stream.errors import DefinitionError, NotFoundError, SignalsStreamError

__all__ = ["api_errors", "error", "json_body", "ok"]

P = ParamSpec("P")
V = TypeVar("V", bound=View)

_ERROR_CODES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 409: "conflict"}
_ERROR_CODES |= {405: "method_not_allowed", 422: "invalid", 501: "not_implemented"}
_ERROR_CODES |= {503: "unavailable"}


def ok(view: View, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return view.bytes(
        orjson.dumps(body, default=_fallback),
        content_type="application/json",
        status=status,
        headers=headers,
    )


def error(view: View, status: int, detail: str) -> Response:
    headers = {"Retry-After": "1"} if status == 503 else None
    return ok(view, {"error": _ERROR_CODES.get(status, "error"), "detail": detail}, status, headers)


async def json_body(request: Request) -> Any:
    """The request's JSON body.

    Raises:
        DefinitionError: empty or not JSON (422, as for any invalid body).
    """
    raw = await request.read()
    if not raw:
        raise DefinitionError("the request needs a JSON body")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DefinitionError(f"the body is not valid JSON: {exc}") from None


def api_errors(
    handler: Callable[Concatenate[V, Request, P], Awaitable[Response]],
) -> Callable[Concatenate[V, Request, P], Awaitable[Response]]:
    """Answer our own errors as JSON with their HTTP status instead of a 500."""

    @functools.wraps(handler)
    async def answered(self: V, request: Request, *args: P.args, **kwargs: P.kwargs) -> Response:
        try:
            return await handler(self, request, *args, **kwargs)
        except (DefinitionError, NotFoundError, SignalsStreamError) as exc:
            return error(self, exc.http_status if exc.http_status < 500 else 503, str(exc))

    return answered


def _fallback(value: Any) -> Any:
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)
