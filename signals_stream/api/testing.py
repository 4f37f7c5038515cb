"""The history endpoints, from the input log and the workers' rows:

* ``POST /api/v1/testing/attribute_groups/``: the SDK's ``test()``;
* ``POST /api/v1/testing/interventions/``: the intervention preview (who matches a rule now,
  scanned on every worker through ``POST /internal/v1/preview-scan``, and the firings over a
  recent window of the log).

Any worker answers: the log is read by a plain consumer outside every group, folds run on
catalogs of their own, and nothing is written (no state, registry or offsets).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from faust.web import Request, Response
from yarl import URL

from signals_stream.api.base import WorkerView, add_page, requires_token
from signals_stream.api.owner import ask_worker
from signals_stream.errors import OwnerUnavailable
from signals_stream.history.group_test import run_group_test
from signals_stream.history.preview import (
    Scan,
    key_prefix,
    other_targets,
    preview_answer,
    preview_rule,
    scan_entities,
    table_entities,
)
from signals_stream.history.requests import GroupTestRequest, PreviewRequest
from signals_stream.interventions import RuleIntervention
from signals_stream.serving.responses import api_errors, json_body, ok
from signals_stream.worker_state import WorkerState

__all__ = ["GroupTestView", "PreviewScanView", "PreviewView", "register_history_views"]


def _now_ms() -> int:
    return int(time.time() * 1000)


class GroupTestView(WorkerView):
    @requires_token
    @api_errors
    async def post(self, request: Request) -> Response:
        query = GroupTestRequest.parse(await json_body(request))
        keys = [entry.model for entry in self.state.registry.list("attribute_keys")]
        columns = await run_group_test(query, self.state.settings, keys, now_ms=_now_ms())
        return ok(self, columns)


class PreviewView(WorkerView):
    @requires_token
    @api_errors
    async def post(self, request: Request) -> Response:
        state = self.state
        query = PreviewRequest.parse(await json_body(request))
        catalog, rule = preview_rule(state.registry, query.intervention, since_publication=False)
        now = _now_ms()
        ids = bool(other_targets(catalog, rule))
        auth = request.headers.get("Authorization", "")
        scan = await _scan_everywhere(state, query, now, auth, ids=ids)
        return ok(
            self, await preview_answer(query, state.settings, catalog, rule, scan, now_ms=now)
        )


class PreviewScanView(WorkerView):
    """This worker's share of a preview: the rule evaluated on the rows it owns."""

    @requires_token
    @api_errors
    async def post(self, request: Request) -> Response:
        body = await json_body(request)
        body = body if isinstance(body, dict) else {}
        rule = RuleIntervention.parse(body.get("intervention") or {})
        now, sample = int(body.get("now_ms", _now_ms())), int(body.get("sample", 10))
        scan = await _scan_local(self.state, rule, now, sample, ids=bool(body.get("ids")))
        return ok(self, scan.to_json())


def register_history_views(state: WorkerState) -> None:
    add_page(state, "/api/v1/testing/attribute_groups/", GroupTestView)
    add_page(state, "/api/v1/testing/interventions/", PreviewView)
    add_page(state, "/internal/v1/preview-scan", PreviewScanView)


async def _scan_local(
    state: WorkerState, rule: RuleIntervention, now: int, sample: int, *, ids: bool = False
) -> Scan:
    catalog, resolved = preview_rule(state.registry, rule)
    prefix = key_prefix(resolved.key_name)
    total = Scan(ids=[] if ids else None)
    for partition in sorted(state.serving_partitions):  # recovered here, not moving
        rows = itertools.takewhile(
            lambda item: item[0].startswith(prefix), state.rows.scan(partition, after=prefix)
        )
        entities = table_entities(rows, resolved.key_name)
        found = scan_entities(entities, catalog, resolved, now, sample=sample, ids=ids)
        found.partitions = [partition]
        total.add(found, sample)
        await asyncio.sleep(0)  # one partition at a time: the stream keeps running
    return total


async def _scan_everywhere(
    state: WorkerState, query: PreviewRequest, now: int, authorization: str, *, ids: bool
) -> Scan:
    """Every worker's scan added up; 503 unless together they covered every partition."""
    try:
        hosts = list(state.app.router.table_metadata(state.entity_rows.name))
    except (KeyError, TypeError) as exc:
        raise OwnerUnavailable("partitions are not assigned yet") from exc
    own = URL(str(state.app.conf.canonical_url))
    others = [URL(h) for h in hosts if (URL(h).host, URL(h).port) != (own.host, own.port)]
    body = {
        "intervention": query.intervention.to_wire(), "now_ms": now, "sample": query.sample,
        "ids": ids,
    }  # fmt: skip
    parts = await asyncio.gather(
        _scan_local(state, query.intervention, now, query.sample, ids=ids),
        *(_ask(state, url, body, authorization) for url in others),
    )
    total = Scan(ids=[] if ids else None)
    for part in parts:
        total.add(part, query.sample)
    total.workers = len(parts)
    missing = set(range(state.settings.partitions)) - set(total.partitions)
    if missing or len(total.partitions) != state.settings.partitions:
        raise OwnerUnavailable(
            f"partitions are moving: the workers' scans covered {len(set(total.partitions))} "
            f"of {state.settings.partitions} partitions; try again"
        )
    return total


async def _ask(state: WorkerState, url: URL, body: dict[str, Any], authorization: str) -> Scan:
    path = "/internal/v1/preview-scan"
    reply = await ask_worker(state, url, path, body, authorization, what="its preview scan")
    return Scan.from_json(reply)
