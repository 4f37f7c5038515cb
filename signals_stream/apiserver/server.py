"""The HTTP side of ``signals-stream api``: Signals reads answered from the profiles store.

    POST /api/v1/get-online-attributes        as on a worker (``docs/api.md``)
    GET  /tables/{group}[/{version}]/{id}      as on a worker
    GET  /api/v1/registry/...                  registry reads (lists, items, versions)
    POST/PUT/DELETE registry, engines/publish  forwarded to SIGNALS_WORKER_URL, else 405
    POST datasets/sql, datasets/runs; GET datasets/runs/{id}[/preview]; POST .../cancel
                                               as on a worker: runs execute here, every
                                               process's runs are answered (the run log)
    POST /api/v1/testing/attribute_groups/     test(), from the input log
    POST /api/v1/testing/interventions/        the preview: matching now from Redis when it
                                               holds every partition (else the worker's)
    GET  /healthz                              200 once the registry log is read (no token)
    GET  /stats                                where reads were answered from

Rows come from Redis and are evaluated by ``serving.retrieval`` and ``engine.read_group``
(the workers' code) at this process's clock. When Redis cannot answer for an id's partition
(down, or being copied again), the read is forwarded to the worker; without one, 503.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from signals_stream.apiserver.proxy import SOURCE_HEADER, WorkerProxy
from signals_stream.datasets import endpoints as datasets
from signals_stream.datasets.runs import DatasetRuns
from signals_stream.engine import read_group
from signals_stream.errors import (
    BadRequest,
    DefinitionError,
    NotFoundError,
    ProfilesUnavailable,
    Unavailable,
)
from signals_stream.history.group_test import run_group_test
from signals_stream.history.preview import other_targets, preview_answer, preview_rule, scan_redis
from signals_stream.history.requests import GroupTestRequest, PreviewRequest
from signals_stream.kafka.registry_log import RegistryLog
from signals_stream.profiles import RedisRows
from signals_stream.registry import KINDS, VERSIONED, OnlineAttributesRequest
from signals_stream.registry.render import render
from signals_stream.serving.agentic import parse_context_query, render_context
from signals_stream.serving.auth import check_token
from signals_stream.serving.bodies import parse_json_body
from signals_stream.serving.errors_http import ErrorAnswer, error_answer, status_answer
from signals_stream.serving.retrieval import answer, needed_rows, resolve_columns
from signals_stream.settings import Settings

__all__ = ["ApiServer", "ApiStats"]

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_PUBLIC = frozenset({"/healthz"})


class NotReady(Unavailable):
    """The registry log is not read yet: no definitions to answer with."""


class ApiStats:
    """Where reads were answered from (for ``/stats`` and metrics).

    Attributes:
        redis_reads: reads answered from Redis.
        worker_reads: reads forwarded to the worker because Redis could not answer.
        refused: reads Redis could not answer, by reason (``down``, ``syncing``, ``corrupt``).
        redis_up: whether the last Redis read succeeded.
    """

    __slots__ = ("redis_reads", "redis_up", "refused", "worker_reads")

    def __init__(self) -> None:
        self.redis_reads = 0
        self.worker_reads = 0
        self.refused: Counter[str] = Counter()
        self.redis_up = True

    def to_json(self) -> dict[str, object]:
        return {
            "redis_reads": self.redis_reads,
            "worker_reads": self.worker_reads,
            "refused": dict(self.refused),
            "redis_up": self.redis_up,
        }


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> web.Response:
    """An error answer from a status alone (401, 405, aiohttp's own 404/405)."""
    return _answer(status_answer(status, detail, headers))


def _answer(error: ErrorAnswer) -> web.Response:
    return _json(error.body, error.status, error.headers)


class ApiServer:
    """The routes, over a registry tail, the Redis rows and an optional worker to fall back on."""

    def __init__(
        self,
        tail: RegistryLog,
        rows: RedisRows,
        *,
        token: bytes | None,
        proxy: WorkerProxy | None,
        settings: Settings | None = None,
    ) -> None:
        self.settings = settings  # test() reads the input log with its broker settings
        self.tail = tail
        self.rows = rows
        self.token = token
        self.proxy = proxy
        self.stats = ApiStats()
        self.dataset_runs = None if settings is None else DatasetRuns(settings)

    async def close(self) -> None:
        if self.dataset_runs is not None:
            await self.dataset_runs.close()

    def application(self) -> web.Application:
        app = web.Application(middlewares=[self._errors, self._auth])
        add = app.router.add_route
        add("GET", "/healthz", self.healthz)
        add("GET", "/stats", self.stats_view)
        add("POST", "/api/v1/get-online-attributes", self.online_attributes)
        add("GET", "/api/v1/event_log", self.event_log)
        add("GET", "/tables/{group}/{version}/{key_value}", self.table_version)
        add("GET", "/tables/{group}/{key_value}", self.table_latest)
        add("GET", "/api/v1/registry/{kind}/", self.registry_list)
        add("GET", "/api/v1/registry/{kind}/{name}", self.registry_item)
        add("GET", "/api/v1/registry/{kind}/{name}/versions/{version}", self.registry_version)
        add("POST", "/api/v1/registry/{kind}/", self.registry_write)
        for method in ("PUT", "DELETE"):
            add(method, "/api/v1/registry/{kind}/{name}", self.registry_write)
            add(method, "/api/v1/registry/{kind}/{name}/versions/{version}", self.registry_write)
        add("POST", "/api/v1/engines/publish", self.registry_write)
        add("POST", "/api/v1/engines/unpublish", self.registry_write)
        add("POST", "/api/v1/testing/attribute_groups/", self.group_test)
        add("POST", "/api/v1/datasets/sql", self.dataset_sql)
        add("POST", "/api/v1/datasets/runs", self.dataset_submit)
        add("GET", "/api/v1/datasets/runs/{run_id}", self.dataset_status)
        add("GET", "/api/v1/datasets/runs/{run_id}/preview", self.dataset_preview)
        add("POST", "/api/v1/datasets/runs/{run_id}/cancel", self.dataset_cancel)
        add("POST", "/api/v1/testing/interventions/", self.preview)
        return app

    # --- middlewares ---------------------------------------------------------------------------

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:  # aiohttp's own 404/405: JSON like the rest
            if exc.status < 400:
                raise
            allow = exc.headers.get("Allow")
            return _error(exc.status, exc.reason, {"Allow": allow} if allow else None)
        except TimeoutError:  # aiohttp answers 504
            raise
        except Exception as exc:
            error = error_answer(exc)
            if error.unexpected:
                logger.error("%s %s: %s", request.method, request.path, exc, exc_info=exc)
            return _answer(error)

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in _PUBLIC:
            refused = check_token(request.headers.get("Authorization"), self.token)
            if refused is not None:
                return _error(401, refused, {"WWW-Authenticate": 'Bearer realm="signals"'})
        return await handler(request)

    # --- reads ---------------------------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.Response:
        ready = self.tail.ready.is_set()
        body = {
            "status": "ok" if ready else "starting",
            "registry_records": self.tail.records,
            "redis": "up" if self.stats.redis_up else "down",
        }
        return _json(body, 200 if ready else 503)

    async def stats_view(self, request: web.Request) -> web.Response:
        return _json(self.stats.to_json())

    async def group_test(self, request: web.Request) -> web.StreamResponse:
        """The SDK's ``test()``, from the input log as the workers answer it (no worker
        needed: it reads Kafka and the registry log only)."""
        settings, raw = await self._history_request(request)
        query = GroupTestRequest.parse(raw)
        keys = [entry.model for entry in self.tail.registry.list("attribute_keys")]
        now = int(time.time() * 1000)
        columns = await run_group_test(query, settings, keys, now_ms=now)
        return _json(columns, headers={SOURCE_HEADER: "log"})

    async def preview(self, request: web.Request) -> web.StreamResponse:
        """The intervention preview: the workers' scan done on the Redis copy of the rows
        when it holds every partition (the worker answers the whole request otherwise),
        the firings from the input log."""
        settings, raw = await self._history_request(request)
        query = PreviewRequest.parse(raw)
        registry = self.tail.registry
        catalog, rule = preview_rule(registry, query.intervention, since_publication=False)
        now = int(time.time() * 1000)
        ids = bool(other_targets(catalog, rule))
        try:
            scan = await scan_redis(
                self.rows, registry, query.intervention, now, sample=query.sample, ids=ids
            )
        except ProfilesUnavailable as exc:
            return await self._fall_back(request, raw, exc)
        self._answered_from_redis()
        body = await preview_answer(query, settings, catalog, rule, scan, now_ms=now)
        return _json(body, headers={SOURCE_HEADER: "redis"})

    async def _history_request(self, request: web.Request) -> tuple[Settings, bytes]:
        self._require_ready()
        if self.settings is None:
            # the errors middleware answers it as JSON (501 not_implemented)
            raise web.HTTPNotImplemented(
                reason="this API server was started without broker settings"
            )
        raw = await request.read()
        if not raw:
            raise DefinitionError("the request needs a JSON body")
        return self.settings, raw

    async def online_attributes(self, request: web.Request) -> web.StreamResponse:
        self._require_ready()
        raw = await request.read()
        if not raw:
            raise DefinitionError("the request needs a JSON body")
        query = OnlineAttributesRequest.parse(raw)
        columns = resolve_columns(query, self.tail.catalog, self.tail.registry)
        try:
            rows = await self.rows.fetch(needed_rows(query, columns))
        except ProfilesUnavailable as exc:
            return await self._fall_back(request, raw, exc)
        self._answered_from_redis()
        body = answer(query, columns, rows, int(time.time() * 1000))
        return _json(body, headers={SOURCE_HEADER: "redis"})

    async def event_log(self, request: web.Request) -> web.StreamResponse:
        self._require_ready()
        catalog = self.tail.catalog
        query = parse_context_query(request.query, catalog)
        try:
            rows = await self.rows.fetch([query.ref])
        except ProfilesUnavailable as exc:
            return await self._fall_back(request, b"", exc)
        self._answered_from_redis()
        body, content_type = render_context(
            query, catalog, rows.get(query.ref), int(time.time() * 1000)
        )
        return web.Response(
            body=body, headers={"Content-Type": content_type, SOURCE_HEADER: "redis"}
        )

    async def table_version(self, request: web.Request) -> web.StreamResponse:
        version = request.match_info["version"]
        if not version.isdigit() or int(version) < 1:
            raise BadRequest(f"version must be a positive integer, got {version!r}")
        return await self._table(request, int(version))

    async def table_latest(self, request: web.Request) -> web.StreamResponse:
        return await self._table(request, None)

    async def _table(self, request: web.Request, version: int | None) -> web.StreamResponse:
        self._require_ready()
        published = self.tail.catalog.readable(request.match_info["group"], version)
        key_value = request.match_info["key_value"]
        ref = (published.key_name, key_value)
        try:
            rows = await self.rows.fetch([ref])
        except ProfilesUnavailable as exc:
            return await self._fall_back(request, b"", exc)
        self._answered_from_redis()
        now_ms = int(time.time() * 1000)
        body = {
            "group": published.definition.name,
            "version": published.definition.version,
            "attribute_key": {"name": published.key_name, "id": key_value},
            "attributes": read_group(rows.get(ref), published, now_ms),
            "evaluated_at_ms": now_ms,
        }
        return _json(body, headers={SOURCE_HEADER: "redis"})

    async def _fall_back(
        self, request: web.Request, body: bytes, why: ProfilesUnavailable
    ) -> web.StreamResponse:
        self.stats.refused[why.reason] += 1
        if why.reason == "down" and self.stats.redis_up:
            self.stats.redis_up = False
            target = self.proxy.base_url if self.proxy else "nobody (SIGNALS_WORKER_URL unset)"
            logger.error("profiles store: %s; reads go to %s until it answers", why, target)
        if self.proxy is None:
            raise why
        response = await self.proxy.forward(request, body)
        self.stats.worker_reads += 1
        return response

    def _answered_from_redis(self) -> None:
        self.stats.redis_reads += 1
        if not self.stats.redis_up:
            self.stats.redis_up = True
            logger.warning("profiles store: Redis answers again; reads are served from it")

    def _require_ready(self) -> None:
        if not self.tail.ready.is_set():
            raise NotReady("the registry log is not read yet")

    # --- datasets (the workers' answers: datasets.endpoints) ------------------------------------

    def _runs(self) -> DatasetRuns:
        if self.dataset_runs is None:
            raise Unavailable("this API server was started without settings: no warehouse")
        return self.dataset_runs

    async def dataset_sql(self, request: web.Request) -> web.Response:
        return _json(await datasets.sql_answer(self._runs(), parse_json_body(await request.read())))

    async def dataset_submit(self, request: web.Request) -> web.Response:
        body = await datasets.submit_answer(self._runs(), parse_json_body(await request.read()))
        return _json(body, 202)

    async def dataset_status(self, request: web.Request) -> web.Response:
        return _json(await datasets.status_answer(self._runs(), request.match_info["run_id"]))

    async def dataset_preview(self, request: web.Request) -> web.Response:
        run_id, limit = request.match_info["run_id"], request.query.get("limit")
        return _json(await datasets.preview_answer(self._runs(), run_id, limit))

    async def dataset_cancel(self, request: web.Request) -> web.Response:
        return _json(await datasets.cancel_answer(self._runs(), request.match_info["run_id"]))

    # --- registry ------------------------------------------------------------------------------

    async def registry_list(self, request: web.Request) -> web.Response:
        self._require_ready()
        registry = self.tail.registry
        entries = registry.list(_kind(request.match_info["kind"]))
        if request.query.get("applied", "").lower() == "true":
            entries = [e for e in entries if e.is_published]
        return _json([render(e, registry) for e in entries])

    async def registry_item(self, request: web.Request) -> web.Response:
        self._require_ready()
        registry = self.tail.registry
        kind, name = _kind(request.match_info["kind"]), request.match_info["name"]
        return _json(render(registry.get(kind, name), registry))

    async def registry_version(self, request: web.Request) -> web.Response:
        self._require_ready()
        registry = self.tail.registry
        kind = _kind(request.match_info["kind"])
        if kind not in VERSIONED:
            raise NotFoundError(f"{kind} are not versioned: use {kind}/<name>")
        version = request.match_info["version"]
        if not version.isdigit() or int(version) < 1:
            raise DefinitionError(f"version must be a positive integer, got {version!r}")
        return _json(render(registry.get(kind, request.match_info["name"], int(version)), registry))

    async def registry_write(self, request: web.Request) -> web.StreamResponse:
        """Writes go through a worker: it appends to the registry log and waits to read them
        back; this process would only see them later, through its own tail."""
        if self.proxy is None:
            return _error(
                405,
                "this API server only reads; send registry writes to a worker, or set "
                "SIGNALS_WORKER_URL to have them forwarded",
                {"Allow": "GET"},
            )
        return await self.proxy.forward(request)  # WorkerUnavailable: 503


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise NotFoundError(f"unknown registry collection {kind!r}; one of {', '.join(KINDS)}")
    return kind
