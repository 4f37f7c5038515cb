"""The registry and retrieval API on real workers: definitions published over HTTP on one
worker are computed by both, any worker answers get-online-attributes for any id, and the
registry survives a restart of every process."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from signals_stream.devtools.generator import GeneratorConfig, generate_events
from signals_stream.devtools.produce import produce_records
from tests.integration.expected import _same, expected_values, lifetime_definitions
from tests.integration.workers import Worker, stream_app

pytestmark = pytest.mark.integration

GROUPS = "/api/v1/registry/attribute_groups/"


def _online(
    worker: Worker, key: str, ids: list[str], attributes: list[str]
) -> dict[str, Any] | None:
    """The columnar answer; None for a 503 with ``Retry-After`` (partitions moving: a worker
    that left is in the assignment until its session times out), which callers retry."""
    status, raw = worker.request(
        "POST",
        "/api/v1/get-online-attributes",
        {"attribute_keys": {key: ids}, "attributes": attributes},
    )
    if status == 503 and orjson.loads(raw).get("error") == "unavailable":
        return None
    assert status == 200, raw
    return orjson.loads(raw)


def _wrong(
    worker: Worker, expected: dict[tuple[str, str], dict[str, Any]], groups: dict[str, Any]
) -> list[str]:
    """Compare every entity through get-online-attributes, 100 ids per call."""
    wrong = []
    for group_name, group in groups.items():
        key = group["attribute_key"]["name"]
        names = [a["name"] for a in group["attributes"]]
        ids = sorted(i for (g, i) in expected if g == group_name)
        for start in range(0, len(ids), 100):
            chunk = ids[start : start + 100]
            body = _online(worker, key, chunk, [f"{group_name}_v1:{n}" for n in names])
            if body is None:
                wrong.append(f"{group_name}: unavailable (503) on {worker.url}")
                continue
            assert body[key] == chunk
            for row, entity_id in enumerate(chunk):
                got = {n: body[n][row] for n in names}
                if not _same(got, expected[(group_name, entity_id)]):
                    wrong.append(
                        f"{group_name}/{entity_id}: {expected[(group_name, entity_id)]} != {got}"
                    )
    return wrong


def _eventually(check, timeout_s: float = 60.0) -> list[str]:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    wrong = check()
    while wrong and time.monotonic() < deadline:
        time.sleep(1.0)
        wrong = check()
    return wrong


def test_http_contract_of_the_registry(kafka_broker, tmp_path: Path) -> None:
    definitions = yaml.safe_load(lifetime_definitions(tmp_path / "d.yaml").read_text())
    group = {**definitions["attribute_groups"][0], "is_published": True}
    app = stream_app(kafka_broker, "reg-http")
    worker = Worker(app.env(tmp_path / "state"), tmp_path / "worker.log")
    try:
        worker.wait_healthy()
        worker.token = None
        assert worker.request("POST", GROUPS, group)[0] == 401
        worker.token = "wrong"
        status, raw = worker.request("GET", GROUPS)
        assert status == 401 and orjson.loads(raw)["error"] == "unauthorized"
        worker.token = app.env(tmp_path)["SIGNALS_API_TOKEN"]

        status, raw = worker.request("POST", GROUPS, group)
        assert status == 200 and orjson.loads(raw)["full_name"] == f"{group['name']}_v1"
        assert worker.request("POST", GROUPS, group)[0] == 400  # exists: the SDK then PUTs
        path = f"{GROUPS}{group['name']}/versions/1"
        assert worker.request("PUT", path, group)[0] == 200
        bad = {**group, "attributes": [{**group["attributes"][0], "aggregation": "median"}]}
        status, raw = worker.request("PUT", path, bad)
        assert status == 422 and "attributes.0.aggregation" in orjson.loads(raw)["detail"]
        assert worker.request("DELETE", path)[0] == 409  # still published
        status, raw = worker.request(
            "POST",
            "/api/v1/engines/unpublish",
            {"attribute_groups": [{"name": group["name"], "version": 1}]},
        )
        assert (status, orjson.loads(raw)) == (200, {"status": "unpublished"})
        status, raw = worker.request("DELETE", path)
        assert (status, orjson.loads(raw)) == (200, {"ok": True})
        assert worker.request("GET", path)[0] == 404
        assert worker.request("GET", "/api/v1/registry/widgets/")[0] == 404
        status, raw = worker.request(
            "POST",
            "/api/v1/get-online-attributes",
            {"attribute_keys": {"domain_userid": ["u"]}, "attributes": ["nope_v1:x"]},
        )
        assert status == 404 and "nope" in orjson.loads(raw)["detail"]

        # Exact paths, no redirects (httpx does not follow them): a missing slash is a 404.
        status, raw = worker.request("POST", GROUPS.rstrip("/"), group)
        assert status == 404 and orjson.loads(raw)["error"] == "not_found"
        status, raw = worker.request("POST", "/api/v1/datasets/sql", {})
        assert status == 422 and "anchors" in orjson.loads(raw)["detail"]
        status, raw = worker.request("GET", "/api/v1/openapi.json")
        spec = orjson.loads(raw)
        assert status == 200 and "/api/v1/get-online-attributes" in spec["paths"]
        assert "/api/v1/registry/attribute_groups/{name}/versions/{version}" in spec["paths"]
        worker.token = None  # the docs page is public; the JSON under /api/v1 is not
        status, raw = worker.request("GET", "/docs/")
        assert status == 200 and b"get-online-attributes" in raw
        assert worker.request("GET", "/api/v1/openapi.json")[0] == 401
    finally:
        worker.stop()


# Four worker starts (90 s each), three 90 s convergence loops and two stops: ~760 s at worst.
@pytest.mark.timeout(900)
def test_published_groups_are_computed_everywhere_and_survive_restarts(
    kafka_broker, tmp_path: Path
) -> None:
    definitions_path = lifetime_definitions(tmp_path / "definitions.yaml")
    definitions = yaml.safe_load(definitions_path.read_text())
    groups = {g["name"]: {**g, "is_published": True} for g in definitions["attribute_groups"]}
    generated = generate_events(GeneratorConfig(users=60, seed=23))
    lines = [next(generated).line for _ in range(1500)]
    expected = expected_values(definitions_path, lines)
    app = stream_app(kafka_broker, "reg-two", input_partitions=1)

    def start(i: int) -> Worker:
        env = app.env(tmp_path / f"w{i}")  # default producer settings
        return Worker(env, tmp_path / f"worker-{i}.log")

    workers = [start(0), start(1)]
    try:
        for worker in workers:
            worker.wait_healthy()
        for group in groups.values():
            status, raw = workers[0].request("POST", GROUPS, group)
            assert status == 200, raw
        # Published on worker 0, visible on worker 1 through the registry log.
        for group in groups:
            assert not _eventually(
                lambda g=group: [] if workers[1].request("GET", f"{GROUPS}{g}")[0] == 200 else [g],
                timeout_s=10,
            )
        asyncio.run(
            produce_records(
                [kafka_broker.bootstrap], app.input_topic, ((None, line) for line in lines)
            )
        )
        for worker in workers:
            wrong = _eventually(lambda w=worker: _wrong(w, expected, groups), timeout_s=90)
            assert not wrong, "\n".join(wrong[:3]) + f"\n{len(wrong)} differ on {worker.url}"

        for worker in workers:
            worker.stop()
        workers = [start(0), start(1)]
        for worker in workers:
            worker.wait_healthy()
            status, raw = worker.request("GET", GROUPS)
            assert {g["name"] for g in orjson.loads(raw)} == set(groups)
        wrong = _eventually(lambda: _wrong(workers[1], expected, groups), timeout_s=90)
        assert not wrong, "\n".join(wrong[:3]) + f"\n{len(wrong)} differ after the restart"
    finally:
        for worker in workers:
            worker.stop()
