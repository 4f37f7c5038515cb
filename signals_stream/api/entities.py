"""``GET /entities/{key}/{id}``: the summary of one entity's state row, from its owner."""

from __future__ import annotations

from faust.web import Request, Response, View

from signals_stream.api.owner import route_to_owner
from signals_stream.app import ENTITY_EVENTS_TOPIC, app
from signals_stream.engine.row import decode_row
from signals_stream.routing.rekey import entity_row_key
from signals_stream.serving.auth import requires_token
from tables.entity_rows import entity_state

__all__ = ["EntityView", "HealthView", "StatsView"]


@app.page("/entities/{key_name}/{entity_id}")
class EntityView(View):
    @requires_token
    async def get(self, request: Request, key_name: str, entity_id: str) -> Response:
        entity = entity_id.encode()
        routed = await route_to_owner(app, entity_state, entity, self.web, request)
        if routed is not None:
            return routed
        raw = entity_state.get(entity_row_key(key_name, entity))
        if raw is None:
            return self.json(
                {"error": "not_found", "detail": f"no state for {key_name}={entity_id}"}, status=404
            )
        return self.json({"key": key_name, "id": entity_id, **decode_row(raw).to_json()})


@app.page("/healthz")
class HealthView(View):
    """200 once the worker has recovered its tables and processes its partitions."""

    async def get(self, request: Request) -> Response:
        recovered = app.tables.recovery.completed.is_set()
        assignment = app.consumer.assignment() if recovered else set()
        body = {
            "status": "ok" if recovered else "starting",
            "assigned_partitions": len(assignment),
            "entity_partitions": sum(1 for tp in assignment if tp.topic == ENTITY_EVENTS_TOPIC),
        }
        return self.json(body, status=200 if recovered else 503)


@app.page("/stats")
class StatsView(View):
    """What this worker has processed since it started (JSON; Prometheus comes with #6)."""

    @requires_token
    async def get(self, request: Request) -> Response:
        from agents.counters import ingest_stats
        from agents.entities import sweeper
        from tables.entity_rows import mirror

        profiles = {} if mirror is None else {"profiles_mirror": mirror.stats.to_json()}
        return self.json({**ingest_stats.to_json(), "rows_swept": sweeper.deleted, **profiles})
