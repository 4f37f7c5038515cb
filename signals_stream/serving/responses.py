"""JSON responses for the workers' Faust views, and their error adapter (``api_errors``) over
the one exception-to-answer mapping, ``serving.errors_http.error_answer``."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

import orjson
from aiohttp import web as aiohttp_web
from faust.web import Request, Response, View
from faust.web.exceptions import WebError

from signals_stream.serving.bodies import parse_json_body
from signals_stream.serving.errors_http import ErrorAnswer, error_answer, status_answer

__all__ = ["answer_error", "api_errors", "error", "error_answer", "json_body", "ok"]

logger = logging.getLogger(__name__)

P = ParamSpec("P")
V = TypeVar("V", bound=View)


def ok(view: View, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return view.bytes(
        orjson.dumps(body, default=_fallback),
        content_type="application/json",
        status=status,
        headers=headers,
    )


def error(view: View, status: int, detail: str) -> Response:
    """An error answer from a status alone (e.g. 405, 501); raise an error of the tree instead
    where one fits."""
    return _respond(view, status_answer(status, detail))


def answer_error(view: View, exc: Exception) -> Response:
    """The answer to ``exc`` (:func:`error_answer`); logged with its traceback if a bug."""
    answer = error_answer(exc)
    if answer.unexpected:
        logger.error("%s: %s", type(view).__name__, exc, exc_info=exc)
    return _respond(view, answer)


def _respond(view: View, answer: ErrorAnswer) -> Response:
    return ok(view, answer.body, answer.status, answer.headers or None)


async def json_body(request: Request) -> Any:
    """The request's JSON body.

    Raises:
        DefinitionError: empty or not JSON (422, as for any invalid body).
    """
    return parse_json_body(await request.read())


def api_errors(
    handler: Callable[Concatenate[V, Request, P], Awaitable[Response]],
) -> Callable[Concatenate[V, Request, P], Awaitable[Response]]:
    """Answer any exception of the view as JSON (:func:`error_answer`): errors of the tree with
    their status, anything else 500, logged with its traceback.

    Faust's ``WebError`` and aiohttp's ``HTTPException`` pass through: they are answers already,
    made by Faust's dispatch and aiohttp. So does ``TimeoutError``, which aiohttp answers 504.
    """

    @functools.wraps(handler)
    async def answered(self: V, request: Request, *args: P.args, **kwargs: P.kwargs) -> Response:
        try:
            return await handler(self, request, *args, **kwargs)
        except (WebError, aiohttp_web.HTTPException, TimeoutError):
            raise
        except Exception as exc:
            return answer_error(self, exc)

    return answered


def _fallback(value: Any) -> Any:
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)
