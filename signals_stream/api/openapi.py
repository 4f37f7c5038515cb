"""The API's OpenAPI 3.1 description (``/api/v1/openapi.json``) and a docs page (``/docs/``).

Schemas come from the same pydantic models that validate requests, so the description cannot
drift from what the server accepts. The JSON needs the token like the rest of ``/api/v1``; the
docs page, outside it, is a public list of endpoints.
Unknown paths under ``/api/v1/`` answer a JSON 404 (registered last, see ``worker.py``), and the
SDK endpoints this engine does not implement answer 501 with the reason.
"""

from __future__ import annotations

import html
from functools import cache
from typing import Any, ClassVar

from faust.web import Request, Response
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from signals_stream.api.base import WorkerView, add_page, requires_token
from signals_stream.datasets.models import DatasetBundleRequest
from signals_stream.definitions import AttributeGroup, AttributeKey
from signals_stream.history.requests import GroupTestRequest, PreviewRequest
from signals_stream.interventions import InterventionInstance, RuleIntervention
from signals_stream.registry import (
    KINDS,
    VERSIONED,
    EventLog,
    OnlineAttributesRequest,
    PublishSelection,
    Service,
)
from signals_stream.serving.responses import error, ok
from signals_stream.worker_state import WorkerState

__all__ = ["build_spec", "register_catch_all_view", "register_docs_views"]

_MODELS = {
    "attribute_keys": AttributeKey,
    "attribute_groups": AttributeGroup,
    "services": Service,
    "interventions": RuleIntervention,
    "event_logs": EventLog,
}
_ERRORS = {
    "400": "Bad request: on POST to a registry collection, it already exists (the SDK then PUTs)",
    "401": "Missing or wrong bearer token",
    "404": "No such definition or route",
    "409": "Conflicts with the registry's state (e.g. deleting while published)",
    "422": "Invalid body or parameters; the detail names the field",
    "503": "Not ready (partitions not assigned) or the registry log is unreachable",
}
_HISTORY_ERRORS = {
    "400": "The window holds more than SIGNALS_HISTORY_MAX_RECORDS records (error "
    "`history_too_large`, the detail names the bound)",
    "503": "The input topic cannot be read, or the read passed SIGNALS_HISTORY_DEADLINE_S "
    "(error `history_deadline`, the detail names the bound)",
}
# SDK endpoints that need a warehouse this engine does not have.
UNSUPPORTED: dict[str, str] = {}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _operation(
    summary: str,
    *,
    body: dict[str, Any] | None = None,
    answer: dict[str, Any] | None = None,
    errors: tuple[str, ...] = ("401", "422"),
    params: list[dict[str, Any]] | None = None,
    public: bool = False,
    descriptions: dict[str, str] | None = None,
) -> dict[str, Any]:
    descriptions = descriptions or {}
    operation: dict[str, Any] = {
        "summary": summary,
        "responses": {
            "200": {"description": "OK", **_json(answer or {"type": "object"})},
            **{
                code: {"description": descriptions.get(code, _ERRORS[code]), **_json(_ref("Error"))}
                for code in errors
            },
        },
    }
    if body is not None:
        operation["requestBody"] = {"required": True, **_json(body)}
    if params:
        operation["parameters"] = params
    if public:
        operation["security"] = []
    return operation


def _path_param(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _registry_paths() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    name = _path_param("name", {"type": "string", "pattern": "^[A-Za-z0-9_]+$"})
    version = _path_param("version", {"type": "integer", "minimum": 1})
    for kind in KINDS:
        model = _MODELS[kind].__name__
        label = kind.replace("_", " ")
        paths[f"/api/v1/registry/{kind}/"] = {
            "get": _operation(f"List {label}", answer={"type": "array", "items": _ref(model)}),
            "post": _operation(
                f"Create (and publish or unpublish) one of the {label}",
                body=_ref(model),
                answer=_ref(model),
                errors=("400", "401", "409", "422", "503"),
            ),
        }
        item: dict[str, Any] = {
            "get": _operation(
                f"Get one of the {label}" + (" (latest version)" if kind in VERSIONED else ""),
                answer=_ref(model),
                errors=("401", "404"),
                params=[name],
            )
        }
        writes = {
            "put": _operation(
                f"Replace one of the {label}",
                body=_ref(model),
                answer=_ref(model),
                errors=("401", "409", "422", "503"),
                params=[name] + ([version] if kind in VERSIONED else []),
            ),
            "delete": _operation(
                f"Delete one of the {label} (unpublish it first)",
                answer=_ref("Deleted"),
                errors=("401", "404", "409", "503"),
                params=[name] + ([version] if kind in VERSIONED else []),
            ),
        }
        if kind in VERSIONED:
            versioned = {
                "get": _operation(
                    f"Get one version of one of the {label}",
                    answer=_ref(model),
                    errors=("401", "404", "422"),
                    params=[name, version],
                ),
                **writes,
            }
            paths[f"/api/v1/registry/{kind}/{{name}}/versions/{{version}}"] = versioned
        else:
            item |= writes
        paths[f"/api/v1/registry/{kind}/{{name}}"] = item
    return paths


@cache
def _dataset_paths() -> dict[str, Any]:
    """``datasets/*`` (``api/datasets.py``)."""
    run_id = _path_param("run_id", {"type": "string", "format": "uuid"})
    table = {
        "type": "object",
        "properties": {k: {"type": "string"} for k in ("database", "schema", "table", "sql")},
    }
    bundle = {
        "type": "object",
        "properties": {
            "anchors": table,
            "attributes": {"type": "array", "items": table},
            "dataset": table,
        },
    }
    status = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "status": {"enum": ["pending", "success", "failed"]},
            "dataset": table,
            "created_at": {"type": "string", "format": "date-time"},
            "finished_at": {"type": "string", "format": "date-time"},
            "error": {"type": "string"},
            "row_count": {"type": "integer"},
        },
    }
    limit = {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": 10_000, "default": 100},
    }
    preview = {
        "type": "object",
        "properties": {
            "columns": {"type": "array"},
            "data": {"type": "array"},
            "row_count": {"type": "integer"},
        },
    }
    posts = {
        "sql": ("The SQL bundle of a training dataset (anchors, attributes per key, dataset), "
                "for the warehouse's dialect or the body's `dialect`", bundle),
        "runs": ("Build a training dataset on the configured warehouse (answers 202)", status),
    }  # fmt: skip
    request = _ref("DatasetBundleRequest")
    paths = {
        f"/api/v1/datasets/{name}": {
            "post": _operation(summary, body=request, answer=answer, errors=("401", "422", "503"))
        }
        for name, (summary, answer) in posts.items()
    }
    return paths | {
        "/api/v1/datasets/runs/{run_id}": {
            "get": _operation(
                "A dataset run's status (from any worker or `signals-stream api`)",
                answer=status,
                errors=("401", "404", "422"),
                params=[run_id],
            )
        },
        "/api/v1/datasets/runs/{run_id}/preview": {
            "get": _operation(
                "The first rows of a successful run's dataset",
                answer=preview,
                errors=("401", "404", "409", "422"),
                params=[run_id, limit],
            )
        },
        "/api/v1/datasets/runs/{run_id}/cancel": {
            "post": _operation(
                "Cancel a pending run (it ends failed: cancelled), wherever it runs",
                errors=("401", "404", "409", "422"),
                params=[run_id],
            )
        },
    }


def build_spec() -> dict[str, Any]:
    """The OpenAPI document (built once per process)."""
    models: list[type[BaseModel]] = [
        *_MODELS.values(),  # type: ignore[list-item]  # pydantic's metaclass, not a type
        PublishSelection,
        OnlineAttributesRequest,
        InterventionInstance,
        GroupTestRequest,
        PreviewRequest,
        DatasetBundleRequest,
    ]
    _, defs = models_json_schema(
        [(model, "validation") for model in models],
        ref_template="#/components/schemas/{model}",
    )
    schemas = dict(defs["$defs"])
    schemas["Error"] = {
        "type": "object",
        "required": ["error", "detail"],
        "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
    }
    schemas["Deleted"] = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    targets = {
        "name": "targets",
        "in": "query",
        "required": True,
        "style": "form",
        "explode": True,
        "schema": {"type": "object", "additionalProperties": {"type": "string"}},
        "description": "attribute key name = id, repeatable: ?domain_userid=U&domain_sessionid=S",
    }
    paths = _registry_paths()
    for verb, status in (("publish", "published"), ("unpublish", "unpublished")):
        paths[f"/api/v1/engines/{verb}"] = {
            "post": _operation(
                f"{verb.capitalize()} the selected definitions",
                body=_ref("PublishSelection"),
                answer={
                    "type": "object",
                    "properties": {
                        "status": {"enum": [status, f"nothing to {verb}"]},
                    },
                },
                errors=("401", "404", "409", "422", "503"),
            )
        }
    paths["/api/v1/get-online-attributes"] = {
        "post": _operation(
            "Attribute values for up to 100 ids per key, columnar, evaluated now",
            body=_ref("OnlineAttributesRequest"),
            answer={"type": "object", "additionalProperties": {"type": "array"}},
            errors=("401", "404", "422", "503"),
        )
    }
    paths["/api/v1/testing/attribute_groups/"] = {
        "post": _operation(
            "The SDK's test(): an (unpublished) group computed over the recent window of the "
            "input log, on event time, for the ids given or 10 recently active ones; columnar, "
            "the key first",
            body=_ref("GroupTestRequest"),
            answer={"type": "object", "additionalProperties": {"type": "array"}},
            errors=("400", "401", "422", "503"),
            descriptions=_HISTORY_ERRORS,
        )
    }
    count = {"type": "integer", "minimum": 0}
    paths["/api/v1/testing/interventions/"] = {
        "post": _operation(
            "Intervention preview (no SDK method): entities of the rule's key matching its "
            "criteria now on every worker (`changed` counts as matching) with sample ids, and "
            "the firings it would have sent over the recent window of the input log",
            body=_ref("PreviewRequest"),
            answer={
                "type": "object",
                "required": ["scanned_count", "matched_count", "matches", "firings"],
                "properties": {
                    "intervention": {"type": "object"},
                    "attribute_key": {"type": "string"},
                    "scanned_count": count,
                    "matched_count": count,
                    "matches": {
                        "type": "object",
                        "additionalProperties": {"type": "array", "items": {"type": "string"}},
                    },
                    "workers": count,
                    "firings": {
                        "type": "object",
                        "properties": {
                            "window": {"type": "string"},
                            "count": count,
                            "entities": count,
                            "targets": {"type": "object", "additionalProperties": count},
                            "scanned_entities": count,
                            "records_read": count,
                            "bad_records": count,
                        },
                    },
                },
            },
            errors=("400", "401", "422", "503"),
            descriptions=_HISTORY_ERRORS,
        )
    }
    context = _operation(
        "One entity's agentic context (event log buffer), oldest event first",
        answer={"type": "object", "description": "EventLogBufferResponse"},
        errors=("401", "404", "422", "503"),
        params=[
            {"name": n, "in": "query", "required": r, "schema": {"type": "string"}}
            for n, r in (("name", True), ("identifier", True), ("format", False))
        ],
    )
    context["responses"]["200"]["content"]["text/plain"] = {"schema": {"type": "string"}}
    paths["/api/v1/event_log"] = {"get": context}
    subscribe = _operation(
        "Subscribe to interventions for the targets (Server-Sent Events; no token needed)",
        errors=("400", "503"),
        params=[targets],
        public=True,
    )
    subscribe["responses"]["200"] = {
        "description": "One `data: <InterventionInstance JSON>` frame per intervention",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
    paths["/api/v1/interventions"] = {
        "get": subscribe,
        "post": _operation(
            "Push an intervention to the targets",
            body=_ref("InterventionInstance"),
            answer={
                "type": "object",
                "properties": {"status": {"enum": ["success", "undelivered"]}},
            },
            errors=("400", "401", "422", "503"),
            params=[targets],
        ),
    }
    paths.update(_dataset_paths())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "signals-stream",
            "version": "1",
            "description": "A Snowplow Signals-compatible API served by every worker.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


class OpenApiView(WorkerView):
    @requires_token  # under /api/v1 like every API endpoint but the subscription
    async def get(self, request: Request) -> Response:
        return ok(self, build_spec())


class DocsView(WorkerView):
    async def get(self, request: Request) -> Response:
        rows = []
        for path, operations in build_spec()["paths"].items():
            for method, operation in operations.items():
                rows.append(
                    f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}"
                    f"</code></td><td>{html.escape(operation['summary'])}</td></tr>"
                )
        page = (
            "<!doctype html><meta charset=utf-8><title>signals-stream API</title>"
            "<style>body{font-family:sans-serif;margin:2em}td{padding:.2em 1em}</style>"
            "<h1>signals-stream API</h1><p>Send <code>Authorization: Bearer &lt;token&gt;"
            "</code> (the SDKs' <code>sandbox_token</code>) on every call except the "
            "interventions subscription. Machine-readable: "
            "<a href='/api/v1/openapi.json'>/api/v1/openapi.json</a>.</p>"
            f"<table>{''.join(rows)}</table>"
        )
        return self.html(page)


class UnsupportedView(WorkerView):
    """An SDK endpoint this engine does not implement: 501 with the reason."""

    why: ClassVar[str]

    async def _answer(self, request: Request, **_: Any) -> Response:
        path = request.url.path
        return error(self, 501, f"{path}: not supported by signals-stream: {self.why}")

    get = post = put = delete = _answer


class UnknownRouteView(WorkerView):
    """Registered after every other /api/v1 view: a JSON 404 rather than aiohttp's text one."""

    async def _answer(self, request: Request, **_: Any) -> Response:
        return error(self, 404, f"no such endpoint: {request.method} {request.url.path}")

    get = post = put = delete = patch = _answer


def register_docs_views(state: WorkerState) -> None:
    """The OpenAPI document, the docs page and the 501s of unsupported SDK endpoints."""
    add_page(state, "/api/v1/openapi.json", OpenApiView)
    add_page(state, "/docs/", DocsView)
    for path, why in UNSUPPORTED.items():
        name = f"Unsupported{abs(hash(path))}"
        add_page(state, path, UnsupportedView, name=name, why=why)


def register_catch_all_view(state: WorkerState) -> None:
    """The JSON 404 for ``/api/v1/...``: must be registered after every other view, which its
    pattern would shadow."""
    add_page(state, "/api/v1/{tail:.*}", UnknownRouteView)
