"""The Signals registry API, exactly as the SDKs call it (paths, slashes, status codes):

    GET  POST          /api/v1/registry/{kind}/                        list, create (400: exists)
    GET  PUT  DELETE   /api/v1/registry/{kind}/{name}                  unversioned kinds; GET
                                                                       gives the latest version
    GET  PUT  DELETE   /api/v1/registry/{kind}/{name}/versions/{v}     groups and interventions
    POST               /api/v1/engines/publish | /api/v1/engines/unpublish

``kind`` is ``attribute_keys``, ``attribute_groups``, ``services``, ``interventions`` or
``event_logs``. Every call needs the bearer token. Writes go to the registry log and are
answered once this worker has read them back (see ``tables/registry_log.py``).
"""

from __future__ import annotations

import time
from typing import Any

from faust.web import Request, Response

from signals_stream.api.base import WorkerView, add_page, requires_token
from signals_stream.errors import DefinitionError, NotFoundError
from signals_stream.history.log_start import with_log_start
from signals_stream.registry import (
    KINDS,
    VERSIONED,
    Kind,
    PublishSelection,
    create,
    delete,
    set_batch_source,
    set_published,
    update,
)
from signals_stream.registry.render import render
from signals_stream.serving.responses import api_errors, error, json_body, ok
from signals_stream.worker_state import WorkerState

__all__ = [
    "BatchSourceView",
    "CollectionView",
    "ItemView",
    "PublishView",
    "UnpublishView",
    "VersionView",
    "register_registry_views",
]


def _kind(kind: str) -> Kind:
    if kind not in KINDS:
        raise NotFoundError(f"unknown registry collection {kind!r}; one of {', '.join(KINDS)}")
    return kind


def path_version(version: str) -> int:
    """A version from a URL path.

    Raises:
        DefinitionError: not a positive integer (422).
    """
    if not version.isdigit() or int(version) < 1:
        raise DefinitionError(f"version must be a positive integer, got {version!r}")
    return int(version)


def _now_ms() -> int:
    return int(time.time() * 1000)


class CollectionView(WorkerView):
    @requires_token
    @api_errors
    async def get(self, request: Request, kind: str) -> Response:
        registry = self.state.registry
        entries = registry.list(_kind(kind))
        if request.query.get("applied", "").lower() == "true":
            entries = [e for e in entries if e.is_published]
        return ok(self, [render(e, registry) for e in entries])

    @requires_token
    @api_errors
    async def post(self, request: Request, kind: str) -> Response:
        body = await json_body(request)
        registry, log = self.state.registry, self.state.registry_log
        async with log.writing():
            entry, changes = create(registry, _kind(kind), body, _now_ms())
            await log.write(changes, self.state.app.producer)
        found = registry.find(entry.kind, entry.name, entry.version) or entry
        answer = render(found, registry)
        return ok(
            self, await with_log_start(self.state.settings, found.model, found.is_published, answer)
        )


class ItemView(WorkerView):
    @requires_token
    @api_errors
    async def get(self, request: Request, kind: str, name: str) -> Response:
        registry = self.state.registry
        return ok(self, render(registry.get(_kind(kind), name), registry))

    @requires_token
    @api_errors
    async def put(self, request: Request, kind: str, name: str) -> Response:
        versioned = self._unversioned(kind)
        if versioned is not None:
            return versioned
        return await _update(self, request, _kind(kind), name, None)

    @requires_token
    @api_errors
    async def delete(self, request: Request, kind: str, name: str) -> Response:
        versioned = self._unversioned(kind)
        if versioned is not None:
            return versioned
        return await _delete(self, _kind(kind), name, None)

    def _unversioned(self, kind: str) -> Response | None:
        if _kind(kind) in VERSIONED:
            return error(self, 405, f"{kind} are versioned: use {kind}/<name>/versions/<version>")
        return None


class VersionView(WorkerView):
    @requires_token
    @api_errors
    async def get(self, request: Request, kind: str, name: str, version: str) -> Response:
        registry = self.state.registry
        return ok(
            self, render(registry.get(self._versioned(kind), name, path_version(version)), registry)
        )

    @requires_token
    @api_errors
    async def put(self, request: Request, kind: str, name: str, version: str) -> Response:
        return await _update(self, request, self._versioned(kind), name, path_version(version))

    @requires_token
    @api_errors
    async def delete(self, request: Request, kind: str, name: str, version: str) -> Response:
        return await _delete(self, self._versioned(kind), name, path_version(version))

    @staticmethod
    def _versioned(kind: str) -> Kind:
        checked = _kind(kind)
        if checked not in VERSIONED:
            raise NotFoundError(f"{kind} are not versioned: use {kind}/<name>")
        return checked


async def _update(
    view: WorkerView, request: Request, kind: Kind, name: str, version: int | None
) -> Response:
    body = await json_body(request)
    registry, log = view.state.registry, view.state.registry_log
    async with log.writing():
        entry, changes = update(registry, kind, name, version, body, _now_ms())
        await log.write(changes, view.state.app.producer)
    found = registry.find(kind, entry.name, entry.version) or entry
    answer = render(found, registry)
    return ok(
        view, await with_log_start(view.state.settings, found.model, found.is_published, answer)
    )


async def _delete(view: WorkerView, kind: Kind, name: str, version: int | None) -> Response:
    registry, log = view.state.registry, view.state.registry_log
    async with log.writing():
        changes = delete(registry, kind, name, version, _now_ms())
        await log.write(changes, view.state.app.producer)
    return ok(view, {"ok": True})


async def _switch(view: WorkerView, request: Request, published: bool) -> Response:
    selection = PublishSelection.parse(await json_body(request))
    registry, log = view.state.registry, view.state.registry_log
    async with log.writing():
        changes = set_published(registry, selection, published, _now_ms())
        await log.write(changes, view.state.app.producer)
    verb = "published" if published else "unpublished"
    status: dict[str, Any] = {"status": verb if changes else f"nothing to {verb[:-2]}"}
    return ok(view, status)


class BatchSourceView(WorkerView):
    """The SDK batch tooling's ``PUT .../versions/{v}/batch_source``."""

    @requires_token
    @api_errors
    async def put(self, request: Request, name: str, version: str) -> Response:
        body = await json_body(request)
        registry, log = self.state.registry, self.state.registry_log
        async with log.writing():
            entry, changes = set_batch_source(
                registry, name, path_version(version), body, _now_ms()
            )
            await log.write(changes, self.state.app.producer)
        found = registry.find(entry.kind, entry.name, entry.version) or entry
        return ok(self, render(found, registry))


class PublishView(WorkerView):
    @requires_token
    @api_errors
    async def post(self, request: Request) -> Response:
        return await _switch(self, request, True)


class UnpublishView(WorkerView):
    @requires_token
    @api_errors
    async def post(self, request: Request) -> Response:
        return await _switch(self, request, False)


def register_registry_views(state: WorkerState) -> None:
    add_page(state, "/api/v1/registry/{kind}/", CollectionView)
    add_page(state, "/api/v1/registry/{kind}/{name}", ItemView)
    add_page(state, "/api/v1/registry/{kind}/{name}/versions/{version}", VersionView)
    add_page(
        state,
        "/api/v1/registry/attribute_groups/{name}/versions/{version}/batch_source",
        BatchSourceView,
    )
    add_page(state, "/api/v1/engines/publish", PublishView)
    add_page(state, "/api/v1/engines/unpublish", UnpublishView)
