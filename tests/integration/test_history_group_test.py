"""The SDK's ``test()`` answered from the input log, on the real ecommerce events.

The 834 events of ``dbt-snowplow-ecommerce`` (rebuilt as enriched TSV by ``tests/dbt_seeds``)
are shifted so the newest lands two minutes ago and produced to a real broker
(``history_data.produce_seed``: record timestamps at the collector time, one day late). A
worker started without definitions answers ``SignalsSandbox.test()`` for an unpublished
group; the expected values are worked out here from the CSV rows with plain Python (counts,
sets, maxima by event time), never by the engine.

The data's days (2022-10-25, 11-17..20, 11-28/29, 12-22) leave wide gaps, so a 30-day window
ending now takes exactly the events of 11-28 and later, and a one-day rolling counter exactly
those of 12-22, whatever the few seconds between the test's clock and the worker's.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from snowplow_signals import (
    Attribute,
    EntityProperty,
    SignalsSandbox,
    StreamAttributeGroup,
    domain_userid,
)

from signals_stream.apiserver.server import ApiServer
from signals_stream.devtools.broker import LocalBroker
from signals_stream.errors import HistoryDeadline, HistoryTooLarge
from signals_stream.history.group_test import run_group_test
from signals_stream.history.requests import GroupTestRequest
from signals_stream.kafka.registry_log import RegistryLog
from signals_stream.profiles import RedisLayout, RedisRows, connect
from signals_stream.settings import load_settings
from tests.dbt_seeds import ECOMMERCE_SEED, seed_rows
from tests.integration.history_data import (
    ECOM,
    LAST_PAGE,
    PRODUCT_X_VIEWS,
    Expected,
    event_ms,
    produce_seed,
    shift_to_now,
)
from tests.integration.workers import API_TOKEN, StreamApp, Worker, running_worker, stream_app

pytestmark = pytest.mark.integration

WINDOW = timedelta(days=30)

GROUP = StreamAttributeGroup(
    name="history_test_user",
    version=1,
    attribute_key=domain_userid,
    owner="history@example.com",
    attributes=[
        Attribute(name="events_seen", type="int64", events=[], aggregation="counter"),
        PRODUCT_X_VIEWS,
        Attribute(
            name="categories",
            type="string_list",
            events=[],
            aggregation="unique_list",
            property=EntityProperty(vendor=ECOM, name="product", major_version=1, path="category"),
        ),
        LAST_PAGE,
        Attribute(
            name="cart_max",
            type="double",
            events=[],
            aggregation="max",
            property=EntityProperty(vendor=ECOM, name="cart", major_version=1, path="total_value"),
        ),
        Attribute(
            name="recent_events",
            type="int64",
            events=[],
            aggregation="counter",
            period=timedelta(days=1),
        ),
    ],
)


DEFAULTS = Expected().values()


@dataclass(frozen=True)
class Scenario:
    app: StreamApp
    worker: Worker
    delta_ms: int
    produced_at_ms: int

    def expected(self, app_ids: set[str] | None = None) -> dict[str, Expected]:
        start = time.time_ns() // 1_000_000 - int(WINDOW.total_seconds() * 1000)
        users: dict[str, Expected] = defaultdict(Expected)
        for row in seed_rows(ECOMMERCE_SEED):
            t = event_ms(row["derived_tstamp"]) + self.delta_ms
            if not row["domain_userid"] or t < start:
                continue
            if app_ids is not None and row["app_id"] not in app_ids:
                continue
            users[row["domain_userid"]].add(row, t, self.produced_at_ms)
        return dict(users)

    def sdk(self) -> SignalsSandbox:
        return SignalsSandbox(api_url=self.worker.url, sandbox_token=API_TOKEN)


@pytest.fixture(scope="module")
def scenario(
    kafka_broker: LocalBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenario]:
    app = stream_app(kafka_broker, "history")
    delta, now = shift_to_now()
    produce_seed(kafka_broker.bootstrap, app.input_topic, delta)
    state = tmp_path_factory.mktemp("history-worker")
    with running_worker(app.env(state / "data"), state / "worker.log") as worker:
        yield Scenario(app, worker, delta, now)


def _table(frame: Any) -> dict[str, dict[str, Any]]:
    """DataFrame -> {id: {column: value}}, NaN (pandas' missing float) as None."""
    records = frame.to_dict(orient="records")
    out = {}
    for record in records:
        entity = record.pop("domain_userid")
        out[entity] = {
            k: None if isinstance(v, float) and math.isnan(v) else v for k, v in record.items()
        }
        out[entity]["categories"] = sorted(out[entity]["categories"])
    return out


def test_sdk_test_computes_the_group_over_the_window_for_the_ids_asked(scenario: Scenario) -> None:
    expected = scenario.expected()
    in_window = sorted(expected, key=lambda u: -expected[u].events_seen)[:4]
    all_users = {r["domain_userid"] for r in seed_rows(ECOMMERCE_SEED) if r["domain_userid"]}
    before_window = sorted(all_users - set(expected))[0]  # has events, all older than 30 days
    ids = [*in_window, before_window, "no-such-user"]

    frame = scenario.sdk().test(attribute_group=GROUP, attribute_key_ids=ids, window=WINDOW)

    assert list(frame.columns) == ["domain_userid", *(a.name for a in GROUP.attributes)]
    assert list(frame["domain_userid"]) == ids
    got = _table(frame)
    for user in in_window:
        assert got[user] == expected[user].values(), user
    assert got[before_window] == DEFAULTS
    assert got["no-such-user"] == DEFAULTS
    # The window and the rolling counter both cut somewhere in this data.
    assert sum(e.recent_events for e in expected.values()) < sum(
        e.events_seen for e in expected.values()
    )


def test_without_ids_it_answers_the_ten_most_recently_active(scenario: Scenario) -> None:
    expected = scenario.expected()
    recent = sorted(expected, key=lambda u: (-expected[u].last_seen_ms, u))[:10]

    frame = scenario.sdk().test(attribute_group=GROUP, window=WINDOW)

    assert list(frame["domain_userid"]) == recent
    got = _table(frame)
    assert got == {user: expected[user].values() for user in recent}


def test_app_ids_keep_only_those_apps_events(scenario: Scenario) -> None:
    expected = scenario.expected(app_ids={"no-such-app"})
    assert expected == {}
    ids = sorted(scenario.expected())[:3]
    frame = scenario.sdk().test(
        attribute_group=GROUP, attribute_key_ids=ids, app_ids=["no-such-app"], window=WINDOW
    )
    assert _table(frame) == dict.fromkeys(ids, DEFAULTS)
    only_web = scenario.expected(app_ids={"ecom-accel"})
    frame = scenario.sdk().test(
        attribute_group=GROUP, attribute_key_ids=ids, app_ids=["ecom-accel"], window=WINDOW
    )
    assert _table(frame) == {u: only_web[u].values() if u in only_web else DEFAULTS for u in ids}


def test_bad_requests_and_bounds_answer_clearly(scenario: Scenario, tmp_path: Path) -> None:
    worker = scenario.worker
    body = {"attribute_group": GROUP.model_dump(mode="json", exclude_none=True), "window": "PT0S"}
    status, raw = worker.request("POST", "/api/v1/testing/attribute_groups/", body)
    assert status == 422 and b"window" in raw
    body["window"] = "PT1H"
    body["attribute_key_ids"] = [f"u{i}" for i in range(51)]
    status, raw = worker.request("POST", "/api/v1/testing/attribute_groups/", body)
    assert status == 422 and b"attribute_key_ids" in raw
    worker.token = None
    assert worker.request("POST", "/api/v1/testing/attribute_groups/", body)[0] == 401
    worker.token = API_TOKEN

    # The bounds, on the same log: too many records in the window, and too little time.
    env = scenario.app.env(tmp_path)
    request = GroupTestRequest.parse({"attribute_group": body["attribute_group"], "window": "P30D"})
    small = load_settings(
        **{k.removeprefix("SIGNALS_").lower(): v for k, v in env.items()},
        history_max_records=100,
    )
    now = time.time_ns() // 1_000_000
    with pytest.raises(HistoryTooLarge, match="SIGNALS_HISTORY_MAX_RECORDS=100"):
        asyncio.run(run_group_test(request, small, (), now_ms=now))
    hurried = small.model_copy(update={"history_max_records": 10_000, "history_deadline_s": 0.001})
    with pytest.raises(HistoryDeadline, match="SIGNALS_HISTORY_DEADLINE_S=0.001"):
        asyncio.run(run_group_test(request, hurried, (), now_ms=now))


def test_the_cli_prints_the_table_the_sdk_gets(scenario: Scenario, tmp_path: Path) -> None:
    expected = scenario.expected()
    user = max(expected, key=lambda u: expected[u].events_seen)
    group_file = tmp_path / "group.json"
    group_file.write_text(json.dumps({"attribute_groups": [GROUP.model_dump(mode="json")]}))
    env = {**os.environ, **scenario.app.env(tmp_path / "data"), "COLUMNS": "400"}
    done = subprocess.run(
        [sys.executable, "-m", "signals_stream.cli", "test", str(group_file)]
        + ["--ids", user, "--window", "P30D"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "reading" in done.stderr  # the progress bar
    row = next(line for line in done.stdout.splitlines() if user in line)
    cells = [cell.strip() for cell in row.strip().strip("│┃").split("│")]
    values = expected[user].values()
    assert cells[0] == user
    assert cells[1:3] == [str(values["events_seen"]), str(values["product_x_views"])]
    assert sorted(json.loads(cells[3])) == values["categories"]
    assert cells[4] == values["last_page"]
    assert float(cells[5]) == values["cart_max"]
    assert cells[6] == str(values["recent_events"])


def test_the_stateless_api_answers_test_too(scenario: Scenario, tmp_path: Path) -> None:
    """``signals-stream api`` (in process here) reads the same log; Redis is never asked."""
    env = scenario.app.env(tmp_path)
    settings = load_settings(**{k.removeprefix("SIGNALS_").lower(): v for k, v in env.items()})
    expected = scenario.expected()
    ids = sorted(expected)[:3]
    body = {
        "attribute_group": GROUP.model_dump(mode="json", exclude_none=True),
        "attribute_key_ids": ids,
        "window": "P30D",
    }

    async def ask() -> tuple[int, Any]:
        tail = RegistryLog.from_settings(settings)
        tail.ready.set()  # its registry holds only the built-in keys; nothing to read
        rows = RedisRows(connect("redis://127.0.0.1:1/0"), RedisLayout("unused"), 4)
        server = ApiServer(tail, rows, token=API_TOKEN.encode(), proxy=None, settings=settings)
        async with TestClient(TestServer(server.application())) as client:
            response = await client.post(
                "/api/v1/testing/attribute_groups/",
                json=body,
                headers={"Authorization": f"Bearer {API_TOKEN}"},
            )
            assert response.headers["X-Signals-Source"] == "log"
            return response.status, await response.json()

    status, columns = asyncio.run(ask())
    assert status == 200, columns
    assert columns["domain_userid"] == ids
    for n, user in enumerate(ids):
        values = expected[user].values()
        got = {name: columns[name][n] for name in values}
        got["categories"] = sorted(got["categories"])
        assert got == values, user
