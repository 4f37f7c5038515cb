"""Two workers under a paced stream; one is killed with SIGKILL and not restarted.

The survivor takes over its partitions after the session timeout, and then every attribute
value and every intervention (by id: none lost, none twice) equals an uninterrupted run; reads
during the move answer 200 or 503 with ``Retry-After``, never a 500 and never a value going
back; the Redis copy of the moved partitions is rebuilt. Then the killed worker comes back, the
partitions are shared again, and the same holds for the rest of the stream.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest
import redis

from signals_stream.devtools.generator import GeneratorConfig, generate_events
from signals_stream.profiles.keys import RedisLayout
from tests.integration.expected import expected_values, mismatches
from tests.integration.test_crash_recovery import _produce_in_background
from tests.integration.test_interventions_crash import (
    _by_firing,
    _definitions,
    _records,
    _targets_by_id,
)
from tests.integration.test_two_workers import _entity_partitions
from tests.integration.workers import Worker, stream_app
from tests.redis_server import SHARED_REDIS_URL, delete_prefix
from tests.unit.engine.test_engine_interventions import _run

# Two workers healthy, two paced phases of ~8 s, a takeover after the 6 s session timeout,
# the killed worker's return, and two convergence waits.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

EVENTS = 3000  # per phase
USERS = 60
RATE = 400.0  # events/s
PARTITIONS = 4


class _Reader(threading.Thread):
    """Reads users' lifetime page views from one worker all along, and records what it saw."""

    def __init__(self, worker: Worker, users: list[str]) -> None:
        super().__init__(daemon=True)
        self.worker, self.users = worker, users
        self.statuses: dict[int, int] = {}
        self.problems: list[str] = []
        self.last: dict[str, int] = {}
        self.stop_reading = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.worker.url, headers=self.worker.auth_headers) as client:
            while not self.stop_reading.is_set():
                for user in self.users:
                    self._read(client, user)
                time.sleep(0.05)

    def _read(self, client: httpx.Client, user: str) -> None:
        try:
            answer = client.get(f"/tables/ecommerce_user/{user}", timeout=10)
        except httpx.HTTPError as exc:
            self.problems.append(f"{user}: {exc!r}")
            return
        self.statuses[answer.status_code] = self.statuses.get(answer.status_code, 0) + 1
        if answer.status_code == 503:
            if "Retry-After" not in answer.headers:
                self.problems.append(f"503 without Retry-After: {answer.text[:200]}")
            return
        if answer.status_code != 200:
            self.problems.append(f"{user}: {answer.status_code} {answer.text[:200]}")
            return
        views = int(answer.json()["attributes"]["page_views"])
        if views < self.last.get(user, 0):
            self.problems.append(f"{user}: page_views went back {self.last[user]}->{views}")
        self.last[user] = views


def _wait_for_partitions(workers: list[Worker], shares: list[int], timeout_s: float) -> float:
    """Seconds until each worker owns ``shares`` entity partitions (0: any, but not none)."""
    started = time.monotonic()
    owned: list[int] = []
    while time.monotonic() - started < timeout_s:
        owned = [_entity_partitions(w) for w in workers]
        if all(o == s or (s == 0 and o > 0) for o, s in zip(owned, shares, strict=True)) and (
            sum(owned) == PARTITIONS
        ):
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"partitions {owned}, wanted {shares}")


def _converged(worker: Worker, expected: dict, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    wrong = mismatches(worker, expected)
    while wrong and time.monotonic() < deadline:
        time.sleep(1.0)
        wrong = mismatches(worker, expected)
    assert not wrong, "\n".join(wrong[:3]) + f"\n{len(wrong)} differ\n{worker.log_tail(30)}"


def _owner_rows(workers: list[Worker], refs: list) -> list[bytes | None]:
    """Each entity's row as its owner serves it (a worker that does not serve it answers 503)."""
    rows: list[bytes | None] = []
    for ref in refs:
        for worker in workers:
            status, raw = worker.request("POST", "/internal/v1/rows", {"entities": [ref]})
            if status == 200:
                (row,) = orjson.loads(raw)["rows"]
                rows.append(None if row is None else base64.b64decode(row))
                break
            assert status == 503, raw
        else:
            raise AssertionError(f"no worker serves {ref}")
    return rows


def _redis_rebuilt(workers: list[Worker], layout: RedisLayout, refs: list) -> None:
    client = redis.Redis.from_url(SHARED_REDIS_URL)
    deadline = time.monotonic() + 60
    try:
        while True:
            copies = client.mget([layout.row(key, entity.encode()) for key, entity in refs])
            rows = _owner_rows(workers, refs)
            differ = [ref for ref, row, copy in zip(refs, rows, copies, strict=True) if row != copy]
            if not differ or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        client.close()
    assert not differ, f"{len(differ)} Redis rows differ from their owner's, e.g. {differ[:3]}"


def _check_interventions(bootstrap: str, topic: str, lines: list[bytes], definitions: Path) -> int:
    """Every firing of the uninterrupted run, under its id, once; returns how many."""
    sent, _ = _run(lines, definitions)
    expected = _by_firing(sent)
    records = asyncio.run(_records(bootstrap, topic, set(_targets_by_id(sent)), 120))
    fired = _by_firing(records)
    twice = {firing: ids for firing, ids in fired.items() if len(ids) > 1}
    assert not twice, f"{len(twice)} firings under several ids: {list(twice.items())[:3]}"
    missing = expected.keys() - fired.keys()
    assert not missing, f"{len(missing)} firings lost, e.g. {sorted(missing)[:3]}"
    assert fired.keys() == expected.keys()
    assert _targets_by_id(records) == _targets_by_id(sent)
    return len(expected)


def test_a_killed_worker_s_partitions_move_to_the_survivor_and_back(
    kafka_broker, tmp_path: Path
) -> None:
    definitions = _definitions(tmp_path / "definitions.yaml")
    generated = generate_events(GeneratorConfig(users=USERS, seed=17))
    first_half = [next(generated).line for _ in range(EVENTS)]
    second_half = [next(generated).line for _ in range(EVENTS)]
    expected_first = expected_values(definitions, first_half)
    expected_all = expected_values(definitions, first_half + second_half)
    users = sorted(entity for group, entity in expected_all if group == "ecommerce_user")
    # One input partition: each entity sees its events in the reference's order.
    app = stream_app(kafka_broker, "failover", input_partitions=1)
    layout = RedisLayout(app.app_id)
    refs = [["domain_userid", user] for user in users]
    common = {"SIGNALS_DEFINITIONS": str(definitions), "SIGNALS_REDIS_URL": SHARED_REDIS_URL}
    envs = [app.env(tmp_path / f"state-{i}", **common) for i in range(2)]
    victim, survivor = (Worker(env, tmp_path / f"worker-{i}.log") for i, env in enumerate(envs))
    reader = _Reader(survivor, users[:20])
    try:
        victim.wait_healthy()
        survivor.wait_healthy()
        _wait_for_partitions([victim, survivor], [0, 0], timeout_s=60)
        reader.start()
        producer = _produce_in_background(
            kafka_broker.bootstrap, app.input_topic, first_half, rate=RATE
        )
        # Kill once both have folded events (a crash mid-stream, not a plain restart).
        victim.wait_applied(50)
        survivor.wait_applied(50)
        applied_before = victim.stats()["applied"]
        victim.kill()
        killed_at = time.monotonic()
        takeover_s = _wait_for_partitions([survivor], [PARTITIONS], timeout_s=90)
        producer.join(timeout=60)
        _converged(survivor, expected_first)
        exact_s = time.monotonic() - killed_at  # includes the rest of the paced stream
        _redis_rebuilt([survivor], layout, refs)
        firings = _check_interventions(
            kafka_broker.bootstrap, app.out_topic, first_half, definitions
        )

        # The killed worker comes back (its local state kept): the partitions are shared again.
        victim = Worker(envs[0], tmp_path / "worker-0-again.log")
        victim.wait_healthy()
        _wait_for_partitions([victim, survivor], [0, 0], timeout_s=90)
        producer = _produce_in_background(
            kafka_broker.bootstrap, app.input_topic, second_half, rate=RATE
        )
        producer.join(timeout=60)
        for worker in (victim, survivor):
            _converged(worker, expected_all)
        _redis_rebuilt([victim, survivor], layout, refs)
        firings_all = _check_interventions(
            kafka_broker.bootstrap, app.out_topic, first_half + second_half, definitions
        )
        reader.stop_reading.set()
        reader.join(timeout=30)
        assert not reader.problems, reader.problems[:5]
        assert reader.statuses.get(200, 0) > 0, reader.statuses
        print(
            f"\nfailover: victim had applied {applied_before} events; all partitions served "
            f"{takeover_s:.1f} s after the kill; every value exact {exact_s:.1f} s after it; "
            f"reads {reader.statuses}; firings {firings} then {firings_all}, 0 lost, 0 twice"
        )
    finally:
        reader.stop_reading.set()
        victim.stop()
        survivor.stop()
        delete_prefix(SHARED_REDIS_URL, app.app_id)
