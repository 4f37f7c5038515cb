"""``signals-stream api`` in process (aiohttp's test server) over the real Redis: the token,
readiness, refusals and where answers come from. The whole process against a worker is in
``tests/integration/test_redis_profiles.py``."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from signals_stream.apiserver.server import ApiServer
from signals_stream.kafka.registry_log import RegistryLog
from signals_stream.profiles import RedisLayout, RedisRows, RowMirror, connect
from signals_stream.settings import load_settings
from tests.integration.expected import EXAMPLE
from tests.redis_server import SHARED_REDIS_URL, delete_prefix, unique_prefix
from tests.unit.profiles.rows import PARTITIONS, MemoryTable, example_catalog, example_rows

pytestmark = pytest.mark.integration

TOKEN = "api-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def api() -> AsyncIterator[tuple[TestClient, ApiServer, RowMirror]]:
    prefix = unique_prefix("api")
    redis_client = connect(SHARED_REDIS_URL)
    layout = RedisLayout(prefix)
    tail = RegistryLog.from_settings(load_settings(definitions=EXAMPLE, app_id=prefix))
    server = ApiServer(
        tail, RedisRows(redis_client, layout, PARTITIONS), token=TOKEN.encode(), proxy=None
    )
    client = TestClient(TestServer(server.application()))
    await client.start_server()
    mirror = RowMirror(redis_client, layout, expires_at=lambda k, v: None)
    try:
        yield client, server, mirror
    finally:
        await client.close()
        await redis_client.aclose()
        delete_prefix(SHARED_REDIS_URL, prefix)


def _body(ids: list[str]) -> dict:
    return {
        "attribute_keys": {"domain_userid": ids},
        "attributes": ["ecommerce_user_v1:page_views", "ecommerce_user_v1:products_viewed"],
    }


async def test_every_data_endpoint_needs_the_token(api) -> None:  # noqa: ANN001
    client, server, _ = api
    server.tail.ready.set()
    for method, path in (
        ("POST", "/api/v1/get-online-attributes"),
        ("GET", "/tables/ecommerce_user/u1"),
        ("GET", "/api/v1/registry/attribute_groups/"),
        ("GET", "/stats"),
    ):
        response = await client.request(method, path)
        assert response.status == 401, path
        assert (await response.json())["error"] == "unauthorized"
    assert (await client.get("/healthz")).status == 200  # public, like the workers'


async def test_reads_wait_for_the_registry_log(api) -> None:  # noqa: ANN001
    client, server, _ = api
    assert (await client.get("/healthz")).status == 503
    response = await client.post("/api/v1/get-online-attributes", json=_body(["u1"]), headers=AUTH)
    assert response.status == 503 and response.headers["Retry-After"] == "1"


async def test_answers_come_from_redis_once_the_partitions_are_copied(api) -> None:  # noqa: ANN001
    client, server, mirror = api
    server.tail.ready.set()
    # Not copied yet and no worker to ask: refused, not answered with defaults.
    response = await client.post("/api/v1/get-online-attributes", json=_body(["u1"]), headers=AUTH)
    assert response.status == 503
    assert "no complete copy" in (await response.json())["detail"]
    rows = example_rows(example_catalog(), now_ms=int(time.time() * 1000), users=5)
    table = MemoryTable(rows)
    mirror.request_resync(table.held)
    while mirror.stats.resyncing_partitions:
        await mirror.step(table)
    users = sorted(k.split(b"\x1f")[1].decode() for k in rows if k.startswith(b"domain_userid"))
    response = await client.post(
        "/api/v1/get-online-attributes", json=_body([*users, "nobody"]), headers=AUTH
    )
    assert response.status == 200 and response.headers["X-Signals-Source"] == "redis"
    body = await response.json()
    assert body["domain_userid"] == [*users, "nobody"]
    assert body["page_views"][-1] == 0 and sum(body["page_views"]) > 0
    view = await client.get(f"/tables/ecommerce_user/1/{users[0]}", headers=AUTH)
    assert (await view.json())["attributes"]["page_views"] == body["page_views"][0]
    stats = await (await client.get("/stats", headers=AUTH)).json()
    assert stats["redis_reads"] == 2 and stats["refused"] == {"syncing": 1}


async def test_writes_are_refused_without_a_worker(api) -> None:  # noqa: ANN001
    client, server, _ = api
    server.tail.ready.set()
    for method, path in (
        ("POST", "/api/v1/registry/attribute_groups/"),
        ("PUT", "/api/v1/registry/services/s"),
        ("DELETE", "/api/v1/registry/attribute_groups/g/versions/1"),
        ("POST", "/api/v1/engines/publish"),
    ):
        response = await client.request(method, path, json={}, headers=AUTH)
        assert response.status == 405, path
        assert "SIGNALS_WORKER_URL" in (await response.json())["detail"]
    listing = await client.get("/api/v1/registry/attribute_groups/", headers=AUTH)
    assert {g["name"] for g in await listing.json()} == {"ecommerce_user", "ecommerce_session"}
    missing = await client.get("/tables/no_such_group/u1", headers=AUTH)
    assert missing.status == 404 and (await missing.json())["error"] == "not_found"


def test_the_api_process_never_builds_the_faust_app() -> None:
    code = (
        "import sys, signals_stream.cli, signals_stream.apiserver;"
        "sys.exit(any(m in sys.modules for m in ('faust', 'signals_stream.worker')))"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
