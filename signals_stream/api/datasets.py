"""The dataset endpoints (issue #18), exactly as SDK 0.4.10 calls them:

    POST /api/v1/datasets/sql                     the SQL bundle (DatasetBundleResponse)
    POST /api/v1/datasets/runs                    202: a run on the configured warehouse
    GET  /api/v1/datasets/runs/{run_id}           pending | success | failed (+ error)
    GET  /api/v1/datasets/runs/{run_id}/preview   ?limit= (default 100, at most 10,000)
    POST /api/v1/datasets/runs/{run_id}/cancel

The answers are ``datasets.endpoints``' (``signals-stream api`` gives the same). A run
executes on the runs' own thread, never on the event loop; its record is in the run log, so
every worker answers for every run.
"""

from __future__ import annotations

from typing import ClassVar

from faust.web import Request, Response
from mode import Service

from signals_stream.api.base import WorkerView, add_page, requires_token
from signals_stream.datasets.endpoints import (
    cancel_answer,
    preview_answer,
    sql_answer,
    status_answer,
    submit_answer,
)
from signals_stream.datasets.runs import DatasetRuns
from signals_stream.serving.responses import api_errors, json_body, ok
from signals_stream.worker_state import WorkerState

__all__ = ["register_dataset_views"]


class _DatasetView(WorkerView):
    runs: ClassVar[DatasetRuns]


class DatasetSqlView(_DatasetView):
    @requires_token
    @api_errors
    async def post(self, request: Request) -> Response:
        return ok(self, await sql_answer(self.runs, await json_body(request)))


class DatasetRunsView(_DatasetView):
    @requires_token
    @api_errors
    async def post(self, request: Request) -> Response:
        return ok(self, await submit_answer(self.runs, await json_body(request)), status=202)


class DatasetRunView(_DatasetView):
    @requires_token
    @api_errors
    async def get(self, request: Request, run_id: str) -> Response:
        return ok(self, await status_answer(self.runs, run_id))


class DatasetPreviewView(_DatasetView):
    @requires_token
    @api_errors
    async def get(self, request: Request, run_id: str) -> Response:
        return ok(self, await preview_answer(self.runs, run_id, request.query.get("limit")))


class DatasetCancelView(_DatasetView):
    @requires_token
    @api_errors
    async def post(self, request: Request, run_id: str) -> Response:
        return ok(self, await cancel_answer(self.runs, run_id))


class _Closing(Service):
    """Stops the runs (and their producer) with the worker."""

    def __init__(self, runs: DatasetRuns) -> None:
        super().__init__()
        self.runs = runs

    async def on_stop(self) -> None:
        await self.runs.close()


def register_dataset_views(state: WorkerState) -> DatasetRuns:
    runs = DatasetRuns(state.settings)
    state.dataset_runs = runs
    state.app.service(_Closing(runs))  # type: ignore[arg-type]
    base = "/api/v1/datasets"
    add_page(state, f"{base}/sql", DatasetSqlView, runs=runs)
    add_page(state, f"{base}/runs", DatasetRunsView, runs=runs)
    add_page(state, f"{base}/runs/{{run_id}}", DatasetRunView, runs=runs)
    add_page(state, f"{base}/runs/{{run_id}}/preview", DatasetPreviewView, runs=runs)
    add_page(state, f"{base}/runs/{{run_id}}/cancel", DatasetCancelView, runs=runs)
    return runs
