"""An exception as an HTTP answer: the one mapping behind every API error.

Framework-free, so both HTTP sides use it: the workers' Faust views
(``serving.responses.api_errors``) and ``signals-stream api`` (``apiserver.server``). Each
error of the tree (``signals_stream.errors``) carries its status and code; anything else is a
bug, answered 500 without its message (which may hold internals) and logged by the adapter
with its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from signals_stream.errors import SignalsStreamError, Unavailable

__all__ = ["ERROR_CODES", "INTERNAL_DETAIL", "ErrorAnswer", "error_answer", "status_answer"]

# The "error" field of answers built from a status alone (401, 405, aiohttp's 404, ...); the
# classes of the tree carry the same codes.
ERROR_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    422: "invalid",
    500: "internal",
    501: "not_implemented",
    503: "unavailable",
}
INTERNAL_DETAIL = "internal server error; the server log has the details"
_RETRY_AFTER_S = Unavailable.retry_after_s


@dataclass(frozen=True, slots=True)
class ErrorAnswer:
    """An HTTP error answer: ``status``, the JSON ``body`` and extra ``headers``.

    Attributes:
        unexpected: a bug rather than a refusal (status 500): the adapter logs the exception
            with its traceback.
    """

    status: int
    body: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)
    unexpected: bool = False


def error_answer(exc: BaseException) -> ErrorAnswer:
    """The HTTP answer to ``exc`` raised by a view.

    An error of the tree answers its class's ``http_status`` with
    ``{"error": <error_code>, "detail": str(exc)}``, plus ``Retry-After`` for
    :class:`~signals_stream.errors.Unavailable`; anything else 500 with a generic detail.
    """
    if not isinstance(exc, SignalsStreamError):
        return ErrorAnswer(500, {"error": ERROR_CODES[500], "detail": INTERNAL_DETAIL}, {}, True)
    body = {"error": exc.error_code, "detail": str(exc)}
    if isinstance(exc, Unavailable):
        return ErrorAnswer(exc.http_status, body, {"Retry-After": str(exc.retry_after_s)})
    return ErrorAnswer(exc.http_status, body, {}, unexpected=exc.http_status >= 500)


def status_answer(status: int, detail: str, headers: dict[str, str] | None = None) -> ErrorAnswer:
    """An error answer built from a status (no exception): 401, 405, 501, aiohttp's own 404.

    A 503 gets ``Retry-After`` as an :class:`~signals_stream.errors.Unavailable` would.
    """
    extra = {"Retry-After": str(_RETRY_AFTER_S)} if status == 503 else {}
    body = {"error": ERROR_CODES.get(status, "error"), "detail": detail}
    return ErrorAnswer(status, body, {**extra, **(headers or {})})
