"""The worker's views in process: the aiohttp application that ``build_worker`` registered, as
a client sees it, with no broker (so the worker owns no partition yet)."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from agents.rows import write_rows
from signals_stream.worker_state import WorkerState
from tests.inprocess.conftest import TOKEN
from tests.inprocess.test_entity_rows import _lines, _pending

AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_health_is_503_until_the_tables_are_recovered(client: TestClient) -> None:
    response = await client.get("/healthz")
    assert response.status == 503
    assert (await response.json())["status"] == "starting"


async def test_the_api_needs_the_token_but_health_and_metrics_do_not(client: TestClient) -> None:
    for path in ("/api/v1/openapi.json", "/stats", "/api/v1/registry/attribute_groups/"):
        refused = await client.get(path)
        assert refused.status == 401, path
        assert (await refused.json())["error"] == "unauthorized"
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        wrong = await client.get(path, headers={"Authorization": "Bearer nope"})
        assert wrong.status == 401, path
        assert (await client.get(path, headers=AUTH)).status == 200, path
    assert (await client.get("/metrics")).status == 200


async def test_the_registry_lists_the_definitions_file(client: TestClient) -> None:
    response = await client.get("/api/v1/registry/attribute_groups/", headers=AUTH)
    names = {(g["name"], g["version"]) for g in await response.json()}
    assert names == {("ecommerce_user", 1), ("ecommerce_session", 1)}


async def test_sync_status_of_a_stream_group_or_a_bad_version_is_a_clear_4xx(
    client: TestClient,
) -> None:
    base = "/api/v1/registry/attribute_groups"
    assert (await client.get(f"{base}/ecommerce_user/versions/1/sync_status")).status == 401
    stream = await client.get(f"{base}/ecommerce_user/versions/1/sync_status", headers=AUTH)
    assert stream.status == 404
    assert "not a warehouse" in (await stream.json())["detail"]
    unknown = await client.get(f"{base}/nothing/versions/1/sync_status", headers=AUTH)
    assert unknown.status == 404
    bad = await client.get(f"{base}/ecommerce_user/versions/x/sync_status", headers=AUTH)
    assert bad.status == 422 and "version" in (await bad.json())["detail"]


async def test_the_catch_all_404_is_registered_after_every_view(client: TestClient) -> None:
    unknown = await client.get("/api/v1/no/such/thing", headers=AUTH)
    assert unknown.status == 404
    assert await unknown.json() == {
        "error": "not_found",
        "detail": "no such endpoint: GET /api/v1/no/such/thing",
    }
    # Real /api/v1 routes are not shadowed by it.
    assert (await client.get("/api/v1/openapi.json", headers=AUTH)).status == 200
    invalid = await client.post("/api/v1/datasets/sql", headers=AUTH, json={})
    assert invalid.status == 422
    assert "anchors" in (await invalid.json())["detail"]


async def test_per_entity_reads_answer_503_with_retry_after_before_assignment(
    client: TestClient,
) -> None:
    for path in ("/tables/ecommerce_user/u1", "/entities/domain_userid/u1"):
        response = await client.get(path, headers=AUTH)
        assert response.status == 503, path
        assert response.headers["Retry-After"] == "1"
        assert (await response.json())["error"] == "unavailable"
    bad_version = await client.get("/tables/ecommerce_user/zero/u1", headers=AUTH)
    assert bad_version.status == 400
    missing = await client.get("/tables/no_such_group/u1", headers=AUTH)
    assert missing.status == 404


async def test_stats_and_metrics_show_the_workers_own_counters(
    worker: WorkerState, client: TestClient
) -> None:
    pending = _pending(worker, _lines(200))
    await write_rows(worker, pending)
    applied = sum(len(p.events) for p in pending.values())

    stats = await (await client.get("/stats", headers=AUTH)).json()
    assert stats["applied"] == applied and stats["rows_written"] == len(pending)
    metrics = await (await client.get("/metrics")).text()
    assert f"signals_events_applied_total {float(applied)}" in metrics
    assert f"signals_rows_written_total {float(len(pending))}" in metrics


async def test_a_push_without_a_target_is_a_400_naming_the_query(client: TestClient) -> None:
    response = await client.post("/api/v1/interventions", headers=AUTH, json={})
    assert response.status == 400
    assert "domain_userid" in (await response.json())["detail"]
    subscribe = await client.get("/api/v1/interventions")
    assert subscribe.status == 400
