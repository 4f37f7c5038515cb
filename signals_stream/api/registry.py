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

from faust.web import Request, Response, View

from signals_stream.app import app, registry
from signals_stream.errors import DefinitionError, NotFoundError
from signals_stream.registry import (
    KINDS,
    VERSIONED,
    Kind,
    PublishSelection,
    create,
    delete,
    set_published,
    update,
)
from signals_stream.registry.render import render
from signals_stream.serving.auth import requires_token
from signals_stream.serving.responses import api_errors, error, json_body, ok
from tables.registry_log import follower, write_changes

__all__ = ["CollectionView", "ItemView", "PublishView", "UnpublishView", "VersionView"]


def _kind(kind: str) -> Kind:
    if kind not in KINDS:
        raise NotFoundError(f"unknown registry collection {kind!r}; one of {', '.join(KINDS)}")
    return kind  # type: ignore[return-value]


def _version(version: str) -> int:
    if not version.isdigit() or int(version) < 1:
        raise DefinitionError(f"version must be a positive integer, got {version!r}")
    return int(version)


def _now_ms() -> int:
    return int(time.time() * 1000)


@app.page("/api/v1/registry/{kind}/")
class CollectionView(View):
    @requires_token
    @api_errors
    async def get(self, request: Request, kind: str) -> Response:
        entries = registry.list(_kind(kind))
        if request.query.get("applied", "").lower() == "true":
            entries = [e for e in entries if e.is_published]
        return ok(self, [render(e, registry) for e in entries])

    @requires_token
    @api_errors
    async def post(self, request: Request, kind: str) -> Response:
        body = await json_body(request)
        async with follower.write_lock:
            entry, changes = create(registry, _kind(kind), body, _now_ms())
            await write_changes(changes)
        return ok(
            self, render(registry.find(entry.kind, entry.name, entry.version) or entry, registry)
        )


@app.page("/api/v1/registry/{kind}/{name}")
class ItemView(View):
    @requires_token
    @api_errors
    async def get(self, request: Request, kind: str, name: str) -> Response:
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


@app.page("/api/v1/registry/{kind}/{name}/versions/{version}")
class VersionView(View):
    @requires_token
    @api_errors
    async def get(self, request: Request, kind: str, name: str, version: str) -> Response:
        return ok(
            self, render(registry.get(self._versioned(kind), name, _version(version)), registry)
        )

    @requires_token
    @api_errors
    async def put(self, request: Request, kind: str, name: str, version: str) -> Response:
        return await _update(self, request, self._versioned(kind), name, _version(version))

    @requires_token
    @api_errors
    async def delete(self, request: Request, kind: str, name: str, version: str) -> Response:
        return await _delete(self, self._versioned(kind), name, _version(version))

    @staticmethod
    def _versioned(kind: str) -> Kind:
        checked = _kind(kind)
        if checked not in VERSIONED:
            raise NotFoundError(f"{kind} are not versioned: use {kind}/<name>")
        return checked


async def _update(
    view: View, request: Request, kind: Kind, name: str, version: int | None
) -> Response:
    body = await json_body(request)
    async with follower.write_lock:
        entry, changes = update(registry, kind, name, version, body, _now_ms())
        await write_changes(changes)
    return ok(view, render(registry.find(kind, entry.name, entry.version) or entry, registry))


async def _delete(view: View, kind: Kind, name: str, version: int | None) -> Response:
    async with follower.write_lock:
        changes = delete(registry, kind, name, version, _now_ms())
        await write_changes(changes)
    return ok(view, {"ok": True})


async def _switch(view: View, request: Request, published: bool) -> Response:
    selection = PublishSelection.parse(await json_body(request))
    async with follower.write_lock:
        changes = set_published(registry, selection, published, _now_ms())
        await write_changes(changes)
    verb = "published" if published else "unpublished"
    status: dict[str, Any] = {"status": verb if changes else f"nothing to {verb[:-2]}"}
    return ok(view, status)


@app.page("/api/v1/engines/publish")
class PublishView(View):
    @requires_token
    @api_errors
    async def post(self, request: Request) -> Response:
        return await _switch(self, request, True)


@app.page("/api/v1/engines/unpublish")
class UnpublishView(View):
    @requires_token
    @api_errors
    async def post(self, request: Request) -> Response:
        return await _switch(self, request, False)
