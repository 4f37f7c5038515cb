"""What every worker view shares: the worker's state, the token check, and registration.

Views are plain ``faust.web.View`` classes with a ``state`` class attribute; :func:`add_page`
binds a subclass of one to a worker's state and registers it on that worker's app, so views
import no agent and no app, and two workers can be built in one process.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ClassVar, Concatenate, ParamSpec, TypeVar

from faust.web import Request, Response, View

from signals_stream.serving.auth import check_token
from signals_stream.serving.errors_http import status_answer
from signals_stream.worker_state import WorkerState

__all__ = ["WorkerView", "add_page", "requires_token", "unauthorized"]

P = ParamSpec("P")
V = TypeVar("V", bound="WorkerView")


class WorkerView(View):
    """A view of one worker: ``state`` is bound by :func:`add_page`."""

    state: ClassVar[WorkerState]


def add_page(
    state: WorkerState,
    path: str,
    view: type[WorkerView],
    *,
    name: str | None = None,
    **attributes: object,
) -> type[WorkerView]:
    """Register ``view`` at ``path`` on the state's app, bound to ``state`` (and to the
    class ``attributes`` given); ``name`` tells apart several pages of one view class."""
    namespace = {"state": state, "__module__": view.__module__, **attributes}
    bound = type(name or view.__name__, (view,), namespace)
    state.app.page(path)(bound)
    return bound


def requires_token(
    handler: Callable[Concatenate[V, Request, P], Awaitable[Response]],
) -> Callable[Concatenate[V, Request, P], Awaitable[Response]]:
    """Decorate a view method: 401 with a JSON error unless the request has the token."""

    @functools.wraps(handler)
    async def checked(self: V, request: Request, *args: P.args, **kwargs: P.kwargs) -> Response:
        refused = check_token(request.headers.get("Authorization"), self.state.api_token)
        if refused is not None:
            return unauthorized(self, refused)
        return await handler(self, request, *args, **kwargs)

    return checked


def unauthorized(view: View, detail: str) -> Response:
    answer = status_answer(401, detail, {"WWW-Authenticate": 'Bearer realm="signals"'})
    return view.json(answer.body, status=answer.status, headers=answer.headers)
