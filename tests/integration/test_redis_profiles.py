"""The Redis profiles store end to end: a worker mirrors its rows to Redis, and the stateless
``signals-stream api`` process answers from Redis exactly what the worker answers; when Redis
dies the stream goes on and the API falls back to the worker, and when Redis returns (empty)
the mirror copies everything again."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
import yaml

from signals_stream.devtools.generator import GeneratorConfig, generate_events
from signals_stream.devtools.produce import produce_records
from signals_stream.profiles import RedisLayout
from tests.integration.expected import expected_values, lifetime_definitions, mismatches
from tests.integration.workers import Worker, running_worker, stream_app
from tests.redis_server import SHARED_REDIS_URL, delete_prefix, private_redis

# Its waits add up to ~400 s (worker and API healthy, four 60 s convergence loops).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

KEYS = {"domain_userid": "ecommerce_user", "domain_sessionid": "ecommerce_session"}


def _call(process: Worker, method: str, path: str, body: Any = None) -> tuple[int, str, Any]:
    """(status, X-Signals-Source, JSON body) of one call with the test token."""
    request = urllib.request.Request(
        process.url + path,
        data=None if body is None else orjson.dumps(body),
        headers={**process.auth_headers, "Content-Type": "application/json"},
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return (
                response.status,
                response.headers.get("X-Signals-Source", ""),
                orjson.loads(response.read()),
            )
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("X-Signals-Source", ""), orjson.loads(error.read())


def _attribute_names(definitions: Path) -> dict[str, list[str]]:
    """Qualified attribute names per key, from the definitions file."""
    doc = yaml.safe_load(definitions.read_text())
    return {
        group["attribute_key"]["name"]: [
            f"{group['name']}_v{group['version']}:{a['name']}" for a in group["attributes"]
        ]
        for group in doc["attribute_groups"]
    }


def _requests(expected: dict[tuple[str, str], Any], names: dict[str, list[str]]) -> list[dict]:
    """get-online-attributes bodies covering every entity, 100 ids a call."""
    bodies = []
    for key, group in KEYS.items():
        ids = sorted(entity for g, entity in expected if g == group)
        for start in range(0, len(ids), 100):
            bodies.append(
                {"attribute_keys": {key: ids[start : start + 100]}, "attributes": names[key]}
            )
    return bodies


def _differences(worker: Worker, api: Worker, bodies: list[dict], source: str) -> list[str]:
    """Where the API's answers (which must come from ``source``) differ from the worker's."""
    wrong = []
    for body in bodies:
        status, _, from_worker = _call(worker, "POST", "/api/v1/get-online-attributes", body)
        assert status == 200, from_worker
        status, answered_by, from_api = _call(api, "POST", "/api/v1/get-online-attributes", body)
        if status != 200 or answered_by != source or from_api != from_worker:
            wrong.append(f"{answered_by or status}: {str(from_api)[:300]} != {from_worker}"[:600])
    return wrong


def _raw_rows_differ(worker: Worker, redis_url: str, layout: RedisLayout, refs: list) -> list:
    """Entities whose row bytes in Redis are not the worker's."""
    status, raw = worker.request("POST", "/internal/v1/rows", {"entities": refs})
    assert status == 200, raw
    rows = [None if r is None else base64.b64decode(r) for r in orjson.loads(raw)["rows"]]
    client = redis.Redis.from_url(redis_url)
    try:
        copies = client.mget([layout.row(key, entity.encode()) for key, entity in refs])
    finally:
        client.close()
    return [ref for ref, row, copy in zip(refs, rows, copies, strict=True) if row != copy]


def _eventually(check: Callable[[], list], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    wrong = check()
    while wrong and time.monotonic() < deadline:
        time.sleep(0.5)
        wrong = check()
    assert not wrong, f"{what}: {len(wrong)} differ, e.g. {wrong[:2]}"


def _produce(broker: Any, topic: str, lines: list[bytes]) -> None:
    asyncio.run(produce_records([broker.bootstrap], topic, ((None, line) for line in lines)))


def _lines(count: int, seed: int) -> list[bytes]:
    generated = generate_events(GeneratorConfig(users=30, seed=seed))
    return [next(generated).line for _ in range(count)]


def test_the_api_answers_from_redis_what_the_worker_answers(kafka_broker, tmp_path: Path) -> None:
    definitions = lifetime_definitions(tmp_path / "definitions.yaml")
    lines = _lines(1200, seed=21)
    expected = expected_values(definitions, lines)
    app = stream_app(kafka_broker, "profiles", input_partitions=1)
    layout = RedisLayout(app.app_id)
    common = {"SIGNALS_DEFINITIONS": str(definitions), "SIGNALS_REDIS_URL": SHARED_REDIS_URL}
    try:
        with running_worker(app.env(tmp_path / "w", **common), tmp_path / "worker.log") as worker:
            _produce(kafka_broker, app.input_topic, lines)
            _eventually(lambda: mismatches(worker, expected), "worker values")
            api_env = app.env(tmp_path / "api", **common)
            with api_process(api_env, tmp_path / "api.log") as api:
                bodies = _requests(expected, _attribute_names(definitions))
                _eventually(lambda: _differences(worker, api, bodies, "redis"), "API vs worker")
                refs = [[key, entity] for (g, entity) in expected for key in KEYS if KEYS[key] == g]
                assert not _raw_rows_differ(worker, SHARED_REDIS_URL, layout, refs)
                # Table views, registry reads: the worker's answers too.
                for group, entity in list(expected)[:20]:
                    _, source, view = _call(api, "GET", f"/tables/{group}/{entity}")
                    _, _, from_worker = _call(worker, "GET", f"/tables/{group}/{entity}")
                    assert source == "redis"
                    assert (
                        view["attributes"] == from_worker["attributes"] == expected[(group, entity)]
                    )
                listing = "/api/v1/registry/attribute_groups/"
                assert _call(api, "GET", listing)[2] == _call(worker, "GET", listing)[2]
                # Writes belong to workers: without SIGNALS_WORKER_URL, a clear 405.
                status, _, refused = _call(api, "POST", listing, {"name": "x"})
                assert status == 405 and "SIGNALS_WORKER_URL" in refused["detail"]
                status, _, _ = _call(api, "GET", "/stats")
                assert status == 200
    finally:
        delete_prefix(SHARED_REDIS_URL, app.app_id)


def test_redis_dies_the_stream_goes_on_and_the_store_catches_up(
    kafka_broker, tmp_path: Path
) -> None:
    definitions = lifetime_definitions(tmp_path / "definitions.yaml")
    lines = _lines(1600, seed=22)
    first, second = lines[:800], lines[800:]
    app = stream_app(kafka_broker, "redis-crash", input_partitions=1)
    layout = RedisLayout(app.app_id)
    names = _attribute_names(definitions)
    with private_redis(tmp_path / "redis.log") as server:
        common = {"SIGNALS_DEFINITIONS": str(definitions), "SIGNALS_REDIS_URL": server.url}
        with running_worker(app.env(tmp_path / "w", **common), tmp_path / "worker.log") as worker:
            api_env = app.env(tmp_path / "api", SIGNALS_WORKER_URL=worker.url, **common)
            with api_process(api_env, tmp_path / "api.log") as api:
                expected = expected_values(definitions, first)
                _produce(kafka_broker, app.input_topic, first)
                _eventually(lambda: mismatches(worker, expected), "worker values")
                bodies = _requests(expected, names)
                _eventually(lambda: _differences(worker, api, bodies, "redis"), "before the crash")

                server.kill()
                expected = expected_values(definitions, lines)
                _produce(kafka_broker, app.input_topic, second)
                # The stream keeps going without Redis...
                _eventually(lambda: mismatches(worker, expected), "worker values, Redis down")
                assert "Redis unreachable" in worker.log_tail(400)
                # ...and the API answers through the worker, with the same values.
                bodies = _requests(expected, names)
                assert not _differences(worker, api, bodies, "worker")
                assert "profiles store" in api.log_tail(200)

                server.start()  # same port, no data: everything must be copied again
                _eventually(lambda: _differences(worker, api, bodies, "redis"), "after restart")
                refs = [[key, entity] for (g, entity) in expected for key in KEYS if KEYS[key] == g]
                assert not _raw_rows_differ(worker, server.url, layout, refs)
                assert "Redis answers again" in worker.log_tail(400)
                status, _, stats = _call(api, "GET", "/stats")
                assert stats["worker_reads"] >= len(bodies) and stats["refused"]


def test_a_restarted_worker_copies_the_state_it_already_holds(kafka_broker, tmp_path: Path) -> None:
    """State built before Redis was configured reaches Redis at the next start (the partitions
    are copied when they are assigned), without any new event."""
    definitions = lifetime_definitions(tmp_path / "definitions.yaml")
    lines = _lines(800, seed=23)
    expected = expected_values(definitions, lines)
    app = stream_app(kafka_broker, "redis-later", input_partitions=1)
    env = app.env(tmp_path / "w", SIGNALS_DEFINITIONS=str(definitions))
    with running_worker(env, tmp_path / "before.log") as worker:
        _produce(kafka_broker, app.input_topic, lines)
        _eventually(lambda: mismatches(worker, expected), "worker values")
    with private_redis(tmp_path / "redis.log") as server:
        common = {"SIGNALS_DEFINITIONS": str(definitions), "SIGNALS_REDIS_URL": server.url}
        with running_worker({**env, **common}, tmp_path / "after.log") as worker:
            with api_process(app.env(tmp_path / "api", **common), tmp_path / "api.log") as api:
                bodies = _requests(expected, _attribute_names(definitions))
                _eventually(lambda: _differences(worker, api, bodies, "redis"), "copied state")
                status, raw = worker.get("/stats")
                assert orjson.loads(raw)["profiles_mirror"]["resynced_rows"] >= len(expected)


@contextlib.contextmanager
def api_process(env: dict[str, str], log_path: Path) -> Iterator[Worker]:
    """A ``signals-stream api`` process, healthy once it has read the registry log."""
    process = Worker(env, log_path, command="api")
    try:
        process.wait_healthy(timeout_s=60)
        yield process
    finally:
        process.stop()
