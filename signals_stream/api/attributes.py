"""``POST /api/v1/get-online-attributes``: attribute values for up to 100 ids per key, by
qualified attribute names (``group_vN:attribute``) or by service, in Signals' columnar shape:

    {"domain_userid": ["u1", "u2"], "page_views": [3, null], ...}

Any worker is an entry point: ids are grouped by the worker that owns their partition, each
owner is asked once for its rows (``POST /internal/v1/rows``), and values are evaluated here
at read time (rolling windows, ``time_since_*``, TTLs) with the same code as the table views.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections import defaultdict

from faust.web import Request, Response
from yarl import URL

from signals_stream.api.base import WorkerView, add_page, requires_token
from signals_stream.api.owner import ask_worker, owner_url
from signals_stream.engine.row import EntityRow, decode_row
from signals_stream.errors import DefinitionError
from signals_stream.kafka.partitioning import entity_partition
from signals_stream.registry import OnlineAttributesRequest
from signals_stream.routing import entity_row_key
from signals_stream.serving.responses import api_errors, json_body, ok
from signals_stream.serving.retrieval import EntityRef, answer, needed_rows, resolve_columns
from signals_stream.worker_state import WorkerState

__all__ = ["OnlineAttributesView", "RowsView", "fetch_rows", "register_attribute_views"]


class OnlineAttributesView(WorkerView):
    @requires_token
    @api_errors
    async def post(self, request: Request) -> Response:
        state = self.state
        query = OnlineAttributesRequest.parse(await json_body(request))
        columns = resolve_columns(query, state.live.catalog, state.registry)
        needed = needed_rows(query, columns)
        rows, remote = await fetch_rows(state, needed, request.headers.get("Authorization", ""))
        body = answer(query, columns, rows, int(time.time() * 1000))
        # How many entities other workers answered: for operators and the serving benchmark.
        return ok(self, body, headers={"X-Signals-Remote-Entities": str(remote)})


class RowsView(WorkerView):
    """Raw entity rows this worker holds, for an entry worker answering a retrieval."""

    @requires_token
    @api_errors
    async def post(self, request: Request) -> Response:
        body = await json_body(request)
        refs = body.get("entities") if isinstance(body, dict) else None
        if not isinstance(refs, list) or not all(
            isinstance(r, list) and len(r) == 2 and all(isinstance(p, str) for p in r) for r in refs
        ):
            raise DefinitionError('entities: expected [["<key name>", "<id>"], ...]')
        raws = [local_row(self.state, (key_name, entity_id)) for key_name, entity_id in refs]
        return ok(
            self, {"rows": [None if r is None else base64.b64encode(r).decode() for r in raws]}
        )


def register_attribute_views(state: WorkerState) -> None:
    add_page(state, "/api/v1/get-online-attributes", OnlineAttributesView)
    add_page(state, "/internal/v1/rows", RowsView)


def local_row(state: WorkerState, ref: EntityRef) -> bytes | None:
    """The row of ``ref`` if this worker holds its partition."""
    key_name, entity_id = ref
    raw_id = entity_id.encode()
    partition = entity_partition(raw_id, state.settings.partitions)
    return state.served_row(partition, entity_row_key(key_name, raw_id))


async def fetch_rows(
    state: WorkerState, refs: set[EntityRef], authorization: str
) -> tuple[dict[EntityRef, EntityRow | None], int]:
    """Every entity's row, read locally or asked of its owner (one request per owner), and how
    many came from other workers."""
    by_owner: dict[URL, list[EntityRef]] = defaultdict(list)
    raws: dict[EntityRef, bytes | None] = {}
    for ref in refs:
        owner = owner_url(state, ref[1].encode())
        if owner is None:
            raws[ref] = local_row(state, ref)
        else:
            by_owner[owner].append(ref)
    replies = await asyncio.gather(
        *(_ask_owner(state, url, owned, authorization) for url, owned in by_owner.items())
    )
    for reply in replies:
        raws.update(reply)
    rows = {ref: None if raw is None else decode_row(raw) for ref, raw in raws.items()}
    return rows, sum(len(owned) for owned in by_owner.values())


async def _ask_owner(
    state: WorkerState, url: URL, refs: list[EntityRef], authorization: str
) -> dict[EntityRef, bytes | None]:
    body = {"entities": [list(ref) for ref in refs]}
    reply = await ask_worker(state, url, "/internal/v1/rows", body, authorization, what="its rows")
    return {
        ref: None if raw is None else base64.b64decode(raw)
        for ref, raw in zip(refs, reply["rows"], strict=True)
    }
