"""``GET /entities/{key}/{id}`` (one entity's row summary, from its owner), ``/healthz`` and
``/stats``."""

from __future__ import annotations

from faust.web import Request, Response

from signals_stream.api.base import WorkerView, add_page, requires_token
from signals_stream.api.owner import route_to_owner
from signals_stream.engine.row import decode_row
from signals_stream.errors import NotFoundError
from signals_stream.kafka.partitioning import entity_partition
from signals_stream.routing import entity_row_key
from signals_stream.serving.responses import api_errors
from signals_stream.worker_state import WorkerState

__all__ = ["EntityView", "HealthView", "StatsView", "register_entity_views"]


class EntityView(WorkerView):
    @requires_token
    @api_errors
    async def get(self, request: Request, key_name: str, entity_id: str) -> Response:
        state = self.state
        entity = entity_id.encode()
        routed = await route_to_owner(state, entity, self.web, request)
        if routed is not None:
            return routed
        partition = entity_partition(entity, state.settings.partitions)
        raw = state.served_row(partition, entity_row_key(key_name, entity))
        if raw is None:
            raise NotFoundError(f"no state for {key_name}={entity_id}")
        return self.json({"key": key_name, "id": entity_id, **decode_row(raw).to_json()})


class HealthView(WorkerView):
    """200 once the worker has read the registry log, recovered its tables and processes its
    partitions."""

    async def get(self, request: Request) -> Response:
        app = self.state.app
        recovered = self.state.ready()
        assignment = app.consumer.assignment() if recovered else set()
        entity_events = self.state.topics.entity_events_name
        owned = sorted(tp.partition for tp in assignment if tp.topic == entity_events)
        body = {
            "status": "ok" if recovered else "starting",
            "assigned_partitions": len(assignment),
            "entity_partitions": len(owned),
            "entity_partition_ids": owned,  # which entities this worker owns (ops, tests)
        }
        return self.json(body, status=200 if recovered else 503)


class StatsView(WorkerView):
    """What this worker has processed since it started (JSON; Prometheus is ``/metrics``)."""

    @requires_token
    async def get(self, request: Request) -> Response:
        state = self.state
        mirror = state.mirror
        profiles = {} if mirror is None else {"profiles_mirror": mirror.stats.to_json()}
        streams = {"sse_streams": state.hub.open_streams, "sse_recent": len(state.hub.recent)}
        sync = {gid: status.to_json() for gid, status in state.sync_statuses.items()}
        return self.json(
            {
                **state.stats.to_json(),
                "rows_swept": state.rows_swept,
                **streams,
                **profiles,
                "sync": sync,
                "backfills": state.backfills.to_json(),
                "warehouse_backfills": {
                    bid: part.to_json() for bid, part in sorted(state.warehouse_backfills.items())
                },
            }
        )


def register_entity_views(state: WorkerState) -> None:
    add_page(state, "/entities/{key_name}/{entity_id}", EntityView)
    add_page(state, "/healthz", HealthView)
    add_page(state, "/stats", StatsView)
