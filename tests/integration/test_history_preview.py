"""The intervention preview (``POST /api/v1/testing/interventions/``) on two real workers.

A group is published through the SDK, then the ecommerce seed is produced
(``history_data.produce_seed``) and consumed live by two workers sharing the partitions. The
preview of two unpublished rules is compared with counts worked out here from the CSV rows:

* "now" (every worker's rows, summed by the entry worker): the entities meeting the criteria
  on everything consumed; ``changed`` counts as matching;
* the firings over a 30-day window of the log, replayed on event time from empty state:
  crossings of a lifetime threshold (once per user), and every change of the last page;
* for a rule that also targets ``domain_sessionid``: the sessions a firing now would go to
  (each matching user's latest event in the window), and those of the window's firings.

The workers mirror their rows to Redis, and a ``signals-stream api`` process answers the
same previews from that copy (and through the worker while Redis lacks a partition).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from snowplow_signals import (
    Attribute,
    SignalsSandbox,
    StreamAttributeGroup,
    domain_sessionid,
    domain_userid,
)

from signals_stream.devtools.broker import LocalBroker
from tests.dbt_seeds import ECOMMERCE_SEED, seed_event_id, seed_rows
from tests.integration.history_data import (
    LAST_PAGE,
    PRODUCT_X_VIEWS,
    event_ms,
    produce_seed,
    shift_to_now,
)
from tests.integration.workers import API_TOKEN, StreamApp, Worker, stream_app
from tests.redis_server import SHARED_REDIS_URL, delete_prefix

pytestmark = pytest.mark.integration

WINDOW_MS = 30 * 86_400_000
THRESHOLD = 10
GROUP = StreamAttributeGroup(
    name="preview_user",
    version=1,
    attribute_key=domain_userid,
    owner="history@example.com",
    attributes=[
        PRODUCT_X_VIEWS,
        LAST_PAGE,
    ],
)
# A group on the session key: a rule can then target sessions (a firing's session id is the
# triggering event's).
SESSION_GROUP = StreamAttributeGroup(
    name="preview_session",
    version=1,
    attribute_key=domain_sessionid,
    owner="history@example.com",
    attributes=[Attribute(name="events", type="int64", events=[], aggregation="counter")],
)


def _rule(name: str, criterion: dict[str, Any], **extra: Any) -> dict[str, Any]:
    owner = "history@example.com"
    return {"name": name, "version": 1, "owner": owner, "criteria": {"all": [criterion]}, **extra}


def _keen(events: list[tuple[int, str, str, str]]) -> bool:
    return sum(url.endswith("/productX") for _, _, url, _ in events) >= THRESHOLD


KEEN = _rule(
    "keen_on_x",
    {"attribute": "preview_user:product_x_views", "operator": ">=", "value": THRESHOLD},
)
MOVED = _rule("moved_page", {"attribute": "preview_user:last_page", "operator": "changed"})
KEEN_SESSIONS = _rule(
    "keen_sessions",
    {"attribute": "preview_user:product_x_views", "operator": ">=", "value": THRESHOLD},
    target_attribute_keys=[{"name": "domain_userid"}, {"name": "domain_sessionid"}],
)


@dataclass(frozen=True)
class Scenario:
    app: StreamApp
    workers: tuple[Worker, Worker]
    api: Worker  # signals-stream api over the workers' Redis copy (worker 0 behind it)
    delta_ms: int

    def preview(
        self, rule: dict[str, Any], sample: int = 5, via: Worker | None = None
    ) -> dict[str, Any]:
        """The preview, retried while partitions move (503) for at most a minute."""
        body = {"intervention": rule, "window": "P30D", "sample": sample}
        deadline = time.monotonic() + 60
        while True:
            status, raw = (via or self.workers[0]).request(
                "POST", "/api/v1/testing/interventions/", body, timeout=60
            )
            if status != 503 or time.monotonic() > deadline:
                assert status == 200, raw
                return dict(orjson.loads(raw))
            time.sleep(0.5)


@pytest.fixture(scope="module")
def scenario(
    kafka_broker: LocalBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenario]:
    app = stream_app(kafka_broker, "preview")
    state = tmp_path_factory.mktemp("preview-workers")
    workers: list[Worker] = []
    redis_env = {"SIGNALS_REDIS_URL": SHARED_REDIS_URL}  # keys under the app id
    try:
        for n in range(2):
            env = app.env(state / f"data{n}", **redis_env)
            workers.append(Worker(env, state / f"worker{n}.log"))
        for worker in workers:
            worker.wait_healthy()
        api_env = app.env(state / "api", **redis_env, SIGNALS_WORKER_URL=workers[0].url)
        workers.append(Worker(api_env, state / "api.log", command="api"))
        workers[2].wait_healthy(timeout_s=60)
        SignalsSandbox(api_url=workers[0].url, sandbox_token=API_TOKEN).publish(
            [GROUP, SESSION_GROUP]
        )
        time.sleep(2.0)  # live on every worker "within a few seconds"
        delta, _ = shift_to_now()
        produce_seed(kafka_broker.bootstrap, app.input_topic, delta)
        rows = list(seed_rows(ECOMMERCE_SEED))
        keyed = sum(bool(r["domain_userid"]) + bool(r["domain_sessionid"]) for r in rows)
        deadline = time.monotonic() + 90
        while sum(int(w.stats()["applied"]) for w in workers[:2]) < keyed:
            assert time.monotonic() < deadline, "the workers did not apply every event"
            time.sleep(0.2)
        yield Scenario(app, (workers[0], workers[1]), workers[2], delta)
    finally:
        for worker in workers:
            worker.stop()
        delete_prefix(SHARED_REDIS_URL, app.app_id)


def _by_user(delta_ms: int, *, window_only: bool) -> dict[str, list[tuple[int, str, str, str]]]:
    """User -> its events as (shifted event time, event id, page_url, domain_sessionid), in
    event-time order (ties by event id, as the replay)."""
    start = time.time_ns() // 1_000_000 - WINDOW_MS
    users: dict[str, list[tuple[int, str, str, str]]] = defaultdict(list)
    for row in seed_rows(ECOMMERCE_SEED):
        t = event_ms(row["derived_tstamp"]) + delta_ms
        if row["domain_userid"] and (t >= start or not window_only):
            users[row["domain_userid"]].append(
                (t, seed_event_id(row["event_id"]), row["page_url"], row["domain_sessionid"])
            )
    return {user: sorted(events) for user, events in users.items()}


def test_a_threshold_rule_matches_and_fires_as_the_data_says(scenario: Scenario) -> None:
    everything = _by_user(scenario.delta_ms, window_only=False)
    keen_now = sorted(u for u, events in everything.items() if _keen(events))
    window = _by_user(scenario.delta_ms, window_only=True)
    keen_in_window = [u for u, events in window.items() if _keen(events)]

    answer = scenario.preview(KEEN)

    assert answer["workers"] == 2
    assert answer["attribute_key"] == "domain_userid"
    assert answer["scanned_count"] == len(everything)
    assert answer["matched_count"] == len(keen_now)
    assert answer["matches"] == {"domain_userid": keen_now[:5]}
    firings = answer["firings"]
    assert (firings["count"], firings["entities"]) == (len(keen_in_window), len(keen_in_window))
    assert firings["targets"] == {"domain_userid": len(keen_in_window)}
    assert firings["scanned_entities"] == len(window)
    # The window cuts: some users crossed the threshold only with older events.
    assert 0 < len(keen_in_window) < len(keen_now)


def test_changed_counts_as_matching_and_fires_on_every_change(scenario: Scenario) -> None:
    everything = _by_user(scenario.delta_ms, window_only=False)
    with_page = sorted(u for u, ev in everything.items() if any(url for _, _, url, _ in ev))
    changes = 0
    changing_users = 0
    for events in _by_user(scenario.delta_ms, window_only=True).values():
        last, mine = None, 0
        for _, _, url, _ in events:
            if url and url != last:
                mine += 1
                last = url
        changes += mine
        changing_users += mine > 0

    answer = scenario.preview(MOVED, sample=100)

    assert answer["matched_count"] == len(with_page)
    assert answer["matches"] == {"domain_userid": with_page}
    assert answer["firings"]["count"] == changes
    assert answer["firings"]["entities"] == changing_users
    assert changes > changing_users  # users changed page more than once


def test_a_rule_that_cannot_resolve_is_a_422_naming_it(scenario: Scenario, tmp_path: Path) -> None:
    bad = _rule("ghost", {"attribute": "no_such_group:x", "operator": ">", "value": 1})
    status, raw = scenario.workers[1].request(
        "POST", "/api/v1/testing/interventions/", {"intervention": bad}
    )
    assert status == 422 and b"ghost" in raw
    worker = scenario.workers[1]
    worker.token = None
    try:
        status, _ = worker.request("POST", "/api/v1/testing/interventions/", {"intervention": KEEN})
        assert status == 401
    finally:
        worker.token = API_TOKEN


def test_the_cli_prints_the_preview(scenario: Scenario, tmp_path: Path) -> None:
    answer = scenario.preview(KEEN, sample=3)
    rule_file = tmp_path / "rule.json"
    rule_file.write_text(json.dumps({"interventions": [KEEN]}))
    env = {**os.environ, **scenario.app.env(tmp_path / "data"), "COLUMNS": "300"}
    done = subprocess.run(
        [sys.executable, "-m", "signals_stream.cli", "preview", str(rule_file)]
        + ["--window", "P30D", "--sample", "3", "--url", scenario.workers[1].url],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = {
        cells[0]: cells[1]
        for line in done.stdout.splitlines()
        if len(cells := [c.strip() for c in line.strip().strip("│").split("│")]) == 2
    }
    assert lines["matching now"] == f"{answer['matched_count']:,}"
    assert lines["sample of domain_userid"] == ", ".join(answer["matches"]["domain_userid"])
    assert lines["firings over P30D"] == f"{answer['firings']['count']:,}"


def _keen_sessions(delta_ms: int) -> tuple[list[str], set[str], set[str], int]:
    """For ``KEEN_SESSIONS``, from the CSV rows: the users matching now; the sessions of
    their latest events in the window (where a firing now would go); the sessions of the
    window's firings (the event of each user's THRESHOLD-th productX view); the users that
    fired in the window."""
    keen_now = sorted(u for u, ev in _by_user(delta_ms, window_only=False).items() if _keen(ev))
    window = _by_user(delta_ms, window_only=True)
    now_sessions = {window[u][-1][3] for u in keen_now if u in window and window[u][-1][3]}
    fired_sessions: set[str] = set()
    fired = 0
    for events in window.values():
        views = 0
        for _, _, url, session in events:
            views += url.endswith("/productX")
            if views == THRESHOLD:
                fired += 1
                fired_sessions |= {session} if session else set()
                break
    return keen_now, now_sessions, fired_sessions, fired


def test_other_target_keys_get_the_ids_a_firing_would_go_to(scenario: Scenario) -> None:
    keen_now, now_sessions, fired_sessions, fired = _keen_sessions(scenario.delta_ms)

    answer = scenario.preview(KEEN_SESSIONS, sample=100)

    assert answer["matched_count"] == len(keen_now)
    assert answer["matches"] == {
        "domain_userid": keen_now,
        "domain_sessionid": sorted(now_sessions),
    }
    assert answer["matched_targets"] == {
        "domain_userid": len(keen_now),
        "domain_sessionid": len(now_sessions),
    }
    assert answer["firings"]["targets"] == {
        "domain_userid": fired,
        "domain_sessionid": len(fired_sessions),
    }
    # Some users matching now have no event in the window: no session to send to.
    assert 0 < len(now_sessions) < len(keen_now)
    short = scenario.preview(KEEN_SESSIONS, sample=2)
    assert short["matches"]["domain_sessionid"] == sorted(now_sessions)[:2]
    assert short["matched_targets"] == answer["matched_targets"]


def _api_reads(api: Worker) -> tuple[int, int]:
    stats = api.stats()
    return int(stats["redis_reads"]), int(stats["worker_reads"])


def test_signals_stream_api_previews_from_redis_as_the_workers_do(scenario: Scenario) -> None:
    keen_now, now_sessions, _, _ = _keen_sessions(scenario.delta_ms)
    for rule in (KEEN, MOVED, KEEN_SESSIONS):
        from_workers = scenario.preview(rule, sample=100)
        deadline = time.monotonic() + 30
        while True:  # the mirror copies every partition once after the start
            before = _api_reads(scenario.api)
            from_redis = scenario.preview(rule, sample=100, via=scenario.api)
            if _api_reads(scenario.api)[0] > before[0]:
                break
            assert time.monotonic() < deadline, "signals-stream api never answered from Redis"
            time.sleep(0.5)
        assert from_redis["workers"] == 0 and from_workers["workers"] == 2
        assert {**from_redis, "workers": 0} == {**from_workers, "workers": 0}
        if rule is KEEN_SESSIONS:  # and against the CSV, not only the workers
            assert from_redis["matched_count"] == len(keen_now)
            assert from_redis["matches"]["domain_sessionid"] == sorted(now_sessions)


def test_without_a_complete_redis_copy_the_api_asks_the_worker(scenario: Scenario) -> None:
    expected = scenario.preview(KEEN, sample=100)
    client = redis.Redis.from_url(SHARED_REDIS_URL)
    try:
        for _ in range(3):  # the worker puts the mark back within ~5 s: retry a lost race
            client.delete(f"{scenario.app.app_id}:synced:1")
            before = _api_reads(scenario.api)
            answer = scenario.preview(KEEN, sample=100, via=scenario.api)
            if _api_reads(scenario.api)[1] > before[1]:
                break
        else:
            raise AssertionError("the api never forwarded the preview to the worker")
    finally:
        client.close()
    assert answer == expected  # the worker's own answer (workers: 2)
    assert scenario.api.stats()["refused"].get("syncing", 0) >= 1
