"""The dataset endpoints (issue #18), exactly as SDK 0.4.10 calls them:

    POST /api/v1/datasets/sql                     the SQL bundle (DatasetBundleResponse)
    POST /api/v1/datasets/runs                    202: a run on the configured warehouse
    GET  /api/v1/datasets/runs/{run_id}           pending | success | failed (+ error)
    GET  /api/v1/datasets/runs/{run_id}/preview   ?limit= (default 100, at most 10,000)
    POST /api/v1/datasets/runs/{run_id}/cancel

Compiling reads the warehouse's events table, so it runs in a thread; a run executes on the
runs' own thread (``datasets.runs``), never on the event loop. Runs live in the worker that
accepted them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from faust.web import Request, Response

from signals_stream.api.base import WorkerView, add_page, requires_token
from signals_stream.datasets.bundle import Bundle
from signals_stream.datasets.models import DEFAULT_PREVIEW_ROWS, DatasetBundleRequest
from signals_stream.datasets.runs import DatasetRuns, bundle_response, connect, prepare
from signals_stream.errors import Conflict, DefinitionError, Unavailable
from signals_stream.serving.responses import api_errors, json_body, ok
from signals_stream.warehouse import WarehouseError
from signals_stream.worker_state import WorkerState

__all__ = ["register_dataset_views"]

T = TypeVar("T")


class _DatasetView(WorkerView):
    runs: ClassVar[DatasetRuns]


def _sql_bundle(runs: DatasetRuns, request: DatasetBundleRequest) -> Bundle:
    """Compiled against the warehouse's events table, in ``request.dialect`` if given."""
    conn = connect(runs.settings)
    try:
        return prepare(request, conn, runs.settings, dialect=request.dialect)
    finally:
        conn.close()


async def _off_loop(call: Callable[..., T], *args: Any) -> T:
    """``call`` on a thread; a warehouse without the file or table is a 409 (the request is
    valid, the warehouse cannot serve it), an unreachable one a 503."""
    try:
        return await asyncio.to_thread(call, *args)
    except WarehouseError as exc:
        if "does not exist" in str(exc):
            raise Conflict(f"warehouse: {exc}") from None
        raise Unavailable(f"warehouse: {exc}") from None


class DatasetSqlView(_DatasetView):
    @requires_token
    @api_errors
    async def post(self, request: Request) -> Response:
        query = DatasetBundleRequest.parse(await json_body(request))
        bundle = await _off_loop(_sql_bundle, self.runs, query)
        return ok(self, bundle_response(bundle).to_wire())


class DatasetRunsView(_DatasetView):
    @requires_token
    @api_errors
    async def post(self, request: Request) -> Response:
        query = DatasetBundleRequest.parse(await json_body(request))
        bundle = await _off_loop(self.runs.prepare, query)
        run = self.runs.submit(bundle)
        body = {
            "id": str(run.id),
            "dataset": run.dataset_json(),
            "created_at": run.created_at.isoformat(),
            "status": run.status,
        }
        return ok(self, body, status=202)


class DatasetRunView(_DatasetView):
    @requires_token
    @api_errors
    async def get(self, request: Request, run_id: str) -> Response:
        return ok(self, self.runs.get(run_id).status_json())


class DatasetPreviewView(_DatasetView):
    @requires_token
    @api_errors
    async def get(self, request: Request, run_id: str) -> Response:
        text = request.query.get("limit", str(DEFAULT_PREVIEW_ROWS))
        if not text.lstrip("-").isdigit():
            raise DefinitionError(f"limit: must be an integer, got {text!r}")
        body = await _off_loop(self.runs.preview, run_id, int(text))
        return ok(self, body)


class DatasetCancelView(_DatasetView):
    @requires_token
    @api_errors
    async def post(self, request: Request, run_id: str) -> Response:
        run = self.runs.cancel(run_id)
        return ok(self, {"id": str(run.id), "message": "cancelled"})


def register_dataset_views(state: WorkerState) -> DatasetRuns:
    runs = DatasetRuns(state.settings)
    base = "/api/v1/datasets"
    add_page(state, f"{base}/sql", DatasetSqlView, runs=runs)
    add_page(state, f"{base}/runs", DatasetRunsView, runs=runs)
    add_page(state, f"{base}/runs/{{run_id}}", DatasetRunView, runs=runs)
    add_page(state, f"{base}/runs/{{run_id}}/preview", DatasetPreviewView, runs=runs)
    add_page(state, f"{base}/runs/{{run_id}}/cancel", DatasetCancelView, runs=runs)
    return runs
