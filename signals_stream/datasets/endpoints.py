"""The dataset endpoints' answers, shared by the workers' views (``api/datasets.py``) and
``signals-stream api`` (``apiserver/server.py``): a JSON body in, a JSON answer out, errors as
the exceptions ``serving.errors_http`` maps (422 naming the field, 404, 409, 503).

Compiling reads the warehouse's events table and a preview reads the run's table, so both run
on a thread; a warehouse without the file or table is a 409 (the request is valid, the
warehouse cannot serve it), an unreachable one a 503.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from signals_stream.datasets.bundle import Bundle
from signals_stream.datasets.models import DEFAULT_PREVIEW_ROWS, DatasetBundleRequest
from signals_stream.datasets.runs import DatasetRuns, bundle_response, connect, prepare
from signals_stream.errors import Conflict, DefinitionError, Unavailable
from signals_stream.warehouse import WarehouseError

__all__ = ["cancel_answer", "preview_answer", "sql_answer", "status_answer", "submit_answer"]

T = TypeVar("T")


async def _warehouse(call: Awaitable[T]) -> T:
    try:
        return await call
    except WarehouseError as exc:
        if "does not exist" in str(exc):
            raise Conflict(f"warehouse: {exc}") from None
        raise Unavailable(f"warehouse: {exc}") from None


def _off_loop(call: Callable[..., T], *args: Any) -> Awaitable[T]:
    return _warehouse(asyncio.to_thread(call, *args))


def _sql_bundle(runs: DatasetRuns, request: DatasetBundleRequest) -> Bundle:
    """Compiled against the warehouse's events table, in ``request.dialect`` if given."""
    conn = connect(runs.settings)
    try:
        return prepare(request, conn, runs.settings, dialect=request.dialect)
    finally:
        conn.close()


async def sql_answer(runs: DatasetRuns, body: Any) -> dict[str, Any]:
    """``POST datasets/sql``: the bundle (``DatasetBundleResponse``)."""
    bundle = await _off_loop(_sql_bundle, runs, DatasetBundleRequest.parse(body))
    return bundle_response(bundle).to_wire()


async def submit_answer(runs: DatasetRuns, body: Any) -> dict[str, Any]:
    """``POST datasets/runs`` (202): the run, recorded before this answers."""
    bundle = await _off_loop(runs.prepare, DatasetBundleRequest.parse(body))
    run = await runs.submit(bundle, body)
    return {
        "id": str(run.id),
        "dataset": run.dataset_json(),
        "created_at": run.created_at.isoformat(),
        "status": run.status,
    }


async def status_answer(runs: DatasetRuns, run_id: str) -> dict[str, Any]:
    """``GET datasets/runs/{id}``: pending | success | failed (+ error), from any process."""
    return (await runs.get(run_id)).status_json()


async def preview_answer(runs: DatasetRuns, run_id: str, limit: str | None) -> dict[str, Any]:
    """``GET datasets/runs/{id}/preview?limit=`` (default 100, at most 10,000)."""
    text = str(DEFAULT_PREVIEW_ROWS) if limit is None else limit
    if not text.lstrip("-").isdigit():
        raise DefinitionError(f"limit: must be an integer, got {text!r}")
    return await _warehouse(runs.preview(run_id, int(text)))


async def cancel_answer(runs: DatasetRuns, run_id: str) -> dict[str, Any]:
    """``POST datasets/runs/{id}/cancel``; 409 once the run has finished."""
    message = await runs.cancel(run_id)
    return {"id": str((await runs.get(run_id)).id), "message": message}
