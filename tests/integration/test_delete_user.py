"""Deleting a user's data: the endpoint and ``signals-stream delete-user`` remove every stored
value of an identifier on its owner, in the changelog (a restore from it does not bring them
back) and in Redis; other users keep theirs, and later events count from nothing.

Expected page views are counted straight from the TSV lines (field 126 ``event_name``, field
15 ``domain_userid``), not with the engine.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import redis

from signals_stream.devtools.generator import GeneratorConfig, generate_events
from signals_stream.devtools.produce import produce_records
from signals_stream.profiles.keys import RedisLayout
from tests.integration.expected import lifetime_definitions, page_views
from tests.integration.workers import Worker, running_worker, stream_app
from tests.redis_server import SHARED_REDIS_URL, delete_prefix

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def _served_page_views(worker: Worker, users: list[str]) -> dict[str, int]:
    status, body = worker.request(
        "POST",
        "/api/v1/get-online-attributes",
        {
            "attribute_keys": {"domain_userid": users},
            "attributes": ["ecommerce_user_v1:page_views"],
        },
    )
    assert status == 200, body
    answer = orjson.loads(body)
    return dict(zip(answer["domain_userid"], answer["page_views"], strict=True))


def _until(worker: Worker, users: list[str], expected: dict[str, int]) -> None:
    deadline = time.monotonic() + 60
    while (served := _served_page_views(worker, users)) != expected:
        assert time.monotonic() < deadline, f"served {served}, expected {expected}"
        time.sleep(0.3)


def _produce(bootstrap: str, topic: str, lines: list[bytes]) -> None:
    asyncio.run(produce_records([bootstrap], topic, ((None, line) for line in lines)))


def test_a_deleted_user_reads_as_new_everywhere_and_stays_deleted(
    kafka_broker, tmp_path: Path
) -> None:
    generated = generate_events(GeneratorConfig(users=12, seed=33))
    lines = [next(generated).line for _ in range(900)]
    views = page_views(lines)
    gone, also_gone, kept = (user for user, _ in views.most_common(3))
    users = [gone, also_gone, kept]
    app = stream_app(kafka_broker, "delete-user")
    definitions = lifetime_definitions(tmp_path / "definitions.yaml")
    common = {"SIGNALS_DEFINITIONS": str(definitions), "SIGNALS_REDIS_URL": SHARED_REDIS_URL}
    layout = RedisLayout(app.app_id)
    store = redis.Redis.from_url(SHARED_REDIS_URL)
    env = app.env(tmp_path / "state", **common)
    try:
        with running_worker(env, tmp_path / "worker.log") as worker:
            _produce(kafka_broker.bootstrap, app.input_topic, lines)
            _until(worker, users, {u: views[u] for u in users})
            deadline = time.monotonic() + 30  # the Redis copy follows within ~100 ms
            while not store.exists(layout.row("domain_userid", gone.encode())):
                assert time.monotonic() < deadline, "the row reached Redis"
                time.sleep(0.1)

            cli = subprocess.run(
                [sys.executable, "-m", "signals_stream.cli", "delete-user", "domain_userid", gone],
                env={**os.environ, **env},
                capture_output=True,
                text=True,
                timeout=90,
            )
            assert cli.returncode == 0 and "deleted" in cli.stdout, cli.stderr
            status, body = worker.request("DELETE", f"/api/v1/user-data/domain_userid/{also_gone}")
            assert status == 200 and orjson.loads(body)["keys_found"] is True, body
            status, body = worker.request("DELETE", f"/api/v1/user-data/domain_userid/{also_gone}")
            assert status == 200 and orjson.loads(body)["keys_found"] is False, body
            status, body = worker.request("DELETE", "/api/v1/user-data/no_such_key/x")
            assert status == 404 and b"attribute_key" in body

            # Answered only once the row is gone from the worker and from Redis.
            assert _served_page_views(worker, users) == {gone: 0, also_gone: 0, kept: views[kept]}
            assert not store.exists(layout.row("domain_userid", gone.encode()))
            assert not store.exists(layout.row("domain_userid", also_gone.encode()))
            assert worker.get(f"/entities/domain_userid/{gone}")[0] == 404
            assert worker.stats()["rows_deleted"] == 2

            # New activity after the deletion counts from nothing.
            again = [line for line in lines if line.split(b"\t")[15] == gone.encode()][:40]
            _produce(kafka_broker.bootstrap, app.input_topic, again)
            _until(worker, users, {gone: page_views(again)[gone], also_gone: 0, kept: views[kept]})
        # A fresh worker restores only from the changelog: the tombstones hold.
        fresh = app.env(tmp_path / "fresh-state", **common)
        with running_worker(fresh, tmp_path / "fresh.log") as worker:
            _until(worker, users, {gone: page_views(again)[gone], also_gone: 0, kept: views[kept]})
    finally:
        delete_prefix(SHARED_REDIS_URL, app.app_id)
