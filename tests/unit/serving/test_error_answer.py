"""The error tree and its one HTTP mapping (``serving.errors_http.error_answer``): every class
answers its status and body, 503s say when to retry, anything else is a logged 500; both
adapters (the workers' ``api_errors``, ``signals-stream api``'s middleware) answer through it;
and every exception class of the project descends from ``SignalsStreamError``."""

from __future__ import annotations

import ast
import asyncio
import builtins
import importlib
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from faust.web.exceptions import ServiceUnavailable

from signals_stream.apiserver.proxy import WorkerUnavailable
from signals_stream.apiserver.server import ApiServer, NotReady
from signals_stream.delivery.hub import TooManySubscribers
from signals_stream.delivery.push import TooManyTargets
from signals_stream.devtools.broker import BrokerStartError
from signals_stream.errors import (
    AlreadyExists,
    BadEvent,
    BadRequest,
    ConfigurationError,
    Conflict,
    DefinitionError,
    InvalidIntervention,
    NotFoundError,
    OwnerUnavailable,
    ProfilesUnavailable,
    RegistryUnavailable,
    SignalsStreamError,
    StateError,
    Unavailable,
)
from signals_stream.patterns import PatternError
from signals_stream.serving.errors_http import (
    ERROR_CODES,
    INTERNAL_DETAIL,
    ErrorAnswer,
    error_answer,
    status_answer,
)
from signals_stream.serving.responses import api_errors, error

ROOT = Path(__file__).resolve().parents[3]
RETRY = {"Retry-After": "1"}

# (exception, status, "error" code, headers): the answers the API gives today.
ANSWERS: list[tuple[BaseException, int, str, dict[str, str]]] = [
    (DefinitionError("bad"), 422, "invalid", {}),
    (PatternError("bad"), 422, "invalid", {}),
    (InvalidIntervention("bad"), 422, "invalid_intervention", {}),
    (BadRequest("bad"), 400, "bad_request", {}),
    (AlreadyExists("bad"), 400, "bad_request", {}),
    (TooManyTargets("bad"), 400, "bad_request", {}),
    (NotFoundError("bad"), 404, "not_found", {}),
    (Conflict("bad"), 409, "conflict", {}),
    (Unavailable("bad"), 503, "unavailable", RETRY),
    (OwnerUnavailable("bad"), 503, "unavailable", RETRY),
    (RegistryUnavailable("bad"), 503, "unavailable", RETRY),
    (ProfilesUnavailable("bad", "syncing"), 503, "unavailable", RETRY),
    (TooManySubscribers("bad"), 503, "unavailable", RETRY),
    (WorkerUnavailable("bad"), 503, "unavailable", RETRY),
    (NotReady("bad"), 503, "unavailable", RETRY),
    (SignalsStreamError("bad"), 500, "internal", {}),
    (ConfigurationError("bad"), 500, "internal", {}),
    (BrokerStartError("bad"), 500, "internal", {}),
    (StateError("bad"), 500, "internal", {}),
]


@pytest.mark.parametrize(
    ("exc", "status", "code", "headers"), ANSWERS, ids=[type(a[0]).__name__ for a in ANSWERS]
)
def test_every_error_of_the_tree_answers_its_status_and_body(
    exc: BaseException, status: int, code: str, headers: dict[str, str]
) -> None:
    assert error_answer(exc) == ErrorAnswer(
        status, {"error": code, "detail": "bad"}, headers, unexpected=status == 500
    )


def test_the_status_table_and_the_classes_agree() -> None:
    """``error(view, status, ...)`` and a raised error of the same status give the same code."""
    for exc, status, code, headers in ANSWERS:
        if not isinstance(exc, InvalidIntervention):  # the one code of its own (the SDK's)
            assert ERROR_CODES[status] == code, type(exc).__name__
        assert status_answer(status, "bad").headers == headers


def test_a_bad_event_answers_its_reason_and_detail() -> None:
    answer = error_answer(BadEvent("InvalidTimestamp(etl_tstamp)", "not a date"))
    assert answer.status == 500
    detail = "InvalidTimestamp(etl_tstamp): not a date"
    assert answer.body == {"error": "internal", "detail": detail}


def test_any_new_unavailable_gets_retry_after() -> None:
    class PartitionsMoving(Unavailable):
        pass

    class Slower(Unavailable):
        retry_after_s = 5

    assert error_answer(PartitionsMoving("moving")) == ErrorAnswer(
        503, {"error": "unavailable", "detail": "moving"}, RETRY
    )
    assert error_answer(Slower("later")).headers == {"Retry-After": "5"}


@pytest.mark.parametrize("exc", [RuntimeError("secret"), KeyError("secret"), ValueError()])
def test_anything_else_is_a_500_that_says_nothing(exc: Exception) -> None:
    answer = error_answer(exc)
    assert answer == ErrorAnswer(500, {"error": "internal", "detail": INTERNAL_DETAIL}, {}, True)
    assert "secret" not in str(answer.body)


def test_status_answers_keep_their_extra_headers() -> None:
    answer = status_answer(405, "reads only", {"Allow": "GET"})
    assert answer == ErrorAnswer(
        405, {"error": "method_not_allowed", "detail": "reads only"}, {"Allow": "GET"}
    )
    assert status_answer(418, "tea").body["error"] == "error"


def test_value_errors_stay_value_errors() -> None:
    """pydantic reports a ValueError raised in a validator; callers may still catch them so."""
    assert issubclass(PatternError, ValueError) and issubclass(TooManyTargets, ValueError)


# --- the workers' adapter -----------------------------------------------------------------------


class _View:
    """What ``api_errors`` needs of a Faust view: ``bytes``."""

    def bytes(self, value: bytes, *, content_type: str, status: int, headers: Any) -> Any:
        return SimpleNamespace(body=value, status=status, headers=headers, type=content_type)


async def _raise(exc: BaseException) -> Any:
    @api_errors
    async def handler(view: Any, request: Any) -> Any:
        raise exc

    return await handler(_View(), object())


async def test_api_errors_answers_through_the_mapping(caplog: pytest.LogCaptureFixture) -> None:
    response = await _raise(OwnerUnavailable("partitions are not assigned yet"))
    assert (response.status, response.headers, response.type) == (503, RETRY, "application/json")
    assert response.body == b'{"error":"unavailable","detail":"partitions are not assigned yet"}'
    response = await _raise(AlreadyExists("exists"))
    assert (response.status, response.headers) == (400, None)
    assert not caplog.records
    with caplog.at_level(logging.ERROR):
        response = await _raise(RuntimeError("boom"))
    assert response.status == 500 and b"boom" not in response.body
    assert caplog.records[-1].exc_info is not None  # logged with its traceback


@pytest.mark.parametrize("exc", [ServiceUnavailable(), TimeoutError()])
async def test_api_errors_leaves_faust_and_aiohttp_their_answers(exc: BaseException) -> None:
    with pytest.raises(type(exc)):
        await _raise(exc)


def test_error_answers_from_a_status_as_before() -> None:
    response = error(_View(), 503, "later")  # type: ignore[arg-type]
    assert (response.status, response.headers) == (503, RETRY)
    assert response.body == b'{"error":"unavailable","detail":"later"}'
    assert error(_View(), 501, "no").headers is None  # type: ignore[arg-type]


# --- signals-stream api's adapter ---------------------------------------------------------------

TOKEN = "error-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class _Tail:
    def __init__(self) -> None:
        self.ready = asyncio.Event()

    @property
    def registry(self) -> Any:
        raise RuntimeError("secret internals")


class _DeadWorker:
    async def forward(self, request: Any, body: bytes | None = None) -> Any:
        raise WorkerUnavailable("the worker at http://w cannot be reached: refused")


@pytest.fixture
async def api_client() -> AsyncIterator[tuple[TestClient, _Tail, ApiServer]]:
    tail = _Tail()
    server = ApiServer(tail, None, token=TOKEN.encode(), proxy=None)  # type: ignore[arg-type]
    client = TestClient(TestServer(server.application()))
    await client.start_server()
    try:
        yield client, tail, server
    finally:
        await client.close()


async def test_the_api_server_answers_through_the_mapping(
    api_client: tuple[TestClient, _Tail, ApiServer], caplog: pytest.LogCaptureFixture
) -> None:
    client, tail, server = api_client
    response = await client.post("/api/v1/get-online-attributes", json={}, headers=AUTH)
    assert response.status == 503 and response.headers["Retry-After"] == "1"
    assert await response.json() == {
        "error": "unavailable",
        "detail": "the registry log is not read yet",
    }
    response = await client.get("/tables/g/0/u1", headers=AUTH)
    assert response.status == 400
    assert await response.json() == {
        "error": "bad_request",
        "detail": "version must be a positive integer, got '0'",
    }
    response = await client.get("/no/such/path", headers=AUTH)  # aiohttp's own 404, in JSON
    assert response.status == 404 and (await response.json())["error"] == "not_found"
    response = await client.put("/api/v1/registry/services/s", json={}, headers=AUTH)
    assert response.status == 405 and response.headers["Allow"] == "GET"
    assert (await response.json())["error"] == "method_not_allowed"
    server.proxy = _DeadWorker()  # type: ignore[assignment]
    response = await client.put("/api/v1/registry/services/s", json={}, headers=AUTH)
    assert response.status == 503 and response.headers["Retry-After"] == "1"
    assert "cannot be reached" in (await response.json())["detail"]

    tail.ready.set()
    with caplog.at_level(logging.ERROR):
        response = await client.get("/api/v1/registry/services/", headers=AUTH)
    assert response.status == 500
    assert await response.json() == {"error": "internal", "detail": INTERNAL_DETAIL}
    assert caplog.records[-1].exc_info is not None


# --- every exception class of the project is in the tree ----------------------------------------

_SOURCES = ("signals_stream", "agents", "tables")
_ROOT_CLASS = ("signals_stream.errors", "SignalsStreamError")
_UNAVAILABLE = ("signals_stream.errors", "Unavailable")
_ClassRef = tuple[str, str]  # (module, class name) of a class defined in the project


class _Source:
    """The classes of the project's source files and their bases, from the AST (nothing is
    imported: the glue's modules build the Faust app)."""

    def __init__(self) -> None:
        self.classes: dict[_ClassRef, list[ast.expr]] = {}
        self.assigns: dict[_ClassRef, set[str]] = {}
        self.imports: dict[str, dict[str, tuple[str, str | None]]] = {}
        for package in _SOURCES:
            for path in sorted((ROOT / package).rglob("*.py")):
                self._read(path)

    def _read(self, path: Path) -> None:
        parts = path.relative_to(ROOT).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        tree = ast.parse(path.read_text(), str(path))
        names = self.imports.setdefault(module, {})
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    names[alias.asname or alias.name] = (node.module, alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    names[alias.asname or alias.name.split(".")[0]] = (
                        alias.name if alias.asname else alias.name.split(".")[0],
                        None,
                    )
            elif isinstance(node, ast.ClassDef):
                self.classes[(module, node.name)] = node.bases
                self.assigns[(module, node.name)] = {
                    target.id
                    for statement in node.body
                    for target in _targets(statement)
                    if isinstance(target, ast.Name)
                }

    def _is_project(self, module: str) -> bool:
        return module.split(".")[0] in _SOURCES

    def lookup(self, module: str, name: str, seen: int = 0) -> _ClassRef | type | None:
        """What ``name`` means in ``module``: a project class, an outside class, or None."""
        if (module, name) in self.classes:
            return (module, name)
        imported = self.imports.get(module, {}).get(name)
        if imported is not None and seen < 20:
            source, attribute = imported
            if attribute is None:
                return None  # a module, not a class
            if self._is_project(source):
                return self.lookup(source, attribute, seen + 1)
            return _outside(source, attribute)
        value = getattr(builtins, name, None)
        return value if isinstance(value, type) else None

    def base(self, module: str, expr: ast.expr) -> _ClassRef | type | None:
        if isinstance(expr, ast.Subscript):
            return self.base(module, expr.value)
        if isinstance(expr, ast.Name):
            return self.lookup(module, expr.id)
        if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name):
            imported = self.imports.get(module, {}).get(expr.value.id)
            if imported is not None and imported[1] is None and not self._is_project(imported[0]):
                return _outside(imported[0], expr.attr)
        return None

    def bases(self, ref: _ClassRef) -> Iterator[_ClassRef | type]:
        for expr in self.classes[ref]:
            resolved = self.base(ref[0], expr)
            if resolved is not None:
                yield resolved

    def is_exception(self, ref: _ClassRef | type) -> bool:
        if isinstance(ref, type):
            return issubclass(ref, BaseException)
        return any(self.is_exception(b) for b in self.bases(ref))

    def descends(self, ref: _ClassRef | type, ancestor: _ClassRef) -> bool:
        if isinstance(ref, type):
            return False
        return ref == ancestor or any(self.descends(b, ancestor) for b in self.bases(ref))


def _targets(statement: ast.stmt) -> list[ast.expr]:
    if isinstance(statement, ast.Assign):
        return statement.targets
    return [statement.target] if isinstance(statement, ast.AnnAssign) else []


def _outside(module: str, name: str) -> type | None:
    try:
        value = getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None
    return value if isinstance(value, type) else None


@pytest.fixture(scope="module")
def source() -> _Source:
    return _Source()


def test_every_exception_class_descends_from_the_root(source: _Source) -> None:
    exceptions = [ref for ref in source.classes if source.is_exception(ref)]
    assert ("signals_stream.delivery.hub", "TooManySubscribers") in exceptions  # the walk works
    assert len(exceptions) >= 20
    outside = [f"{m}.{n}" for m, n in exceptions if not source.descends((m, n), _ROOT_CLASS)]
    assert not outside, f"not under SignalsStreamError (signals_stream/errors.py): {outside}"


def test_the_answer_of_an_error_comes_from_the_tree(source: _Source) -> None:
    """Only signals_stream/errors.py sets ``http_status``/``error_code``; a 503 is an
    ``Unavailable``."""
    own = [
        f"{m}.{n}"
        for (m, n), assigned in source.assigns.items()
        if m != "signals_stream.errors"
        and source.is_exception((m, n))
        and assigned & {"http_status", "error_code"}
    ]
    assert not own, f"set http_status/error_code in signals_stream/errors.py instead: {own}"
    for exc, status, _, _ in ANSWERS:
        assert isinstance(exc, Unavailable) == (status == 503), type(exc).__name__
