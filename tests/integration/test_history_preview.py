"""The intervention preview (``POST /api/v1/testing/interventions/``) on two real workers.

A group is published through the SDK, then the ecommerce seed is produced
(``history_data.produce_seed``) and consumed live by two workers sharing the partitions. The
preview of two unpublished rules is compared with counts worked out here from the CSV rows:

* "now" (every worker's rows, summed by the entry worker): the entities meeting the criteria
  on everything consumed; ``changed`` counts as matching;
* the firings over a 30-day window of the log, replayed on event time from empty state:
  crossings of a lifetime threshold (once per user), and every change of the last page.
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
from snowplow_signals import (
    SignalsSandbox,
    StreamAttributeGroup,
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


def _rule(name: str, criterion: dict[str, Any]) -> dict[str, Any]:
    owner = "history@example.com"
    return {"name": name, "version": 1, "owner": owner, "criteria": {"all": [criterion]}}


def _keen(events: list[tuple[int, str, str]]) -> bool:
    return sum(url.endswith("/productX") for *_, url in events) >= THRESHOLD


KEEN = _rule(
    "keen_on_x",
    {"attribute": "preview_user:product_x_views", "operator": ">=", "value": THRESHOLD},
)
MOVED = _rule("moved_page", {"attribute": "preview_user:last_page", "operator": "changed"})


@dataclass(frozen=True)
class Scenario:
    app: StreamApp
    workers: tuple[Worker, Worker]
    delta_ms: int

    def preview(self, rule: dict[str, Any], sample: int = 5) -> dict[str, Any]:
        """The preview, retried while partitions move (503) for at most a minute."""
        body = {"intervention": rule, "window": "P30D", "sample": sample}
        deadline = time.monotonic() + 60
        while True:
            status, raw = self.workers[0].request(
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
    try:
        for n in range(2):
            workers.append(Worker(app.env(state / f"data{n}"), state / f"worker{n}.log"))
        for worker in workers:
            worker.wait_healthy()
        SignalsSandbox(api_url=workers[0].url, sandbox_token=API_TOKEN).publish([GROUP])
        time.sleep(2.0)  # live on every worker "within a few seconds"
        delta, _ = shift_to_now()
        produce_seed(kafka_broker.bootstrap, app.input_topic, delta)
        with_user = sum(1 for r in seed_rows(ECOMMERCE_SEED) if r["domain_userid"])
        deadline = time.monotonic() + 90
        while sum(int(w.stats()["applied"]) for w in workers) < with_user:
            assert time.monotonic() < deadline, "the workers did not apply every event"
            time.sleep(0.2)
        yield Scenario(app, (workers[0], workers[1]), delta)
    finally:
        for worker in workers:
            worker.stop()


def _by_user(delta_ms: int, *, window_only: bool) -> dict[str, list[tuple[int, str, str]]]:
    """User -> its events as (shifted event time, event id, page_url), in event-time order."""
    start = time.time_ns() // 1_000_000 - WINDOW_MS
    users: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    for row in seed_rows(ECOMMERCE_SEED):
        t = event_ms(row["derived_tstamp"]) + delta_ms
        if row["domain_userid"] and (t >= start or not window_only):
            users[row["domain_userid"]].append((t, seed_event_id(row["event_id"]), row["page_url"]))
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
    with_page = sorted(u for u, ev in everything.items() if any(url for *_, url in ev))
    changes = 0
    changing_users = 0
    for events in _by_user(scenario.delta_ms, window_only=True).values():
        last, mine = None, 0
        for _, _, url in events:
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
