"""Backfill on the real broker: a group published with ``backfill_since_tstamp`` after the
ecommerce seed was consumed ends with every entity's values equal to those worked out from the
CSV (plain Python, ``history_data.Expected``) and to an identical group that a second app had
live from the start, including the events produced while the backfill runs (the seam), and
with a SIGKILL during the backfill.

The backfilled worker runs another group on the same key from the start (``OTHER``, reading no
page URL or context), so events routed with the older plan reach the new slots' rows too; the
backfill is rate-limited so that the rest of the seed arrives while it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from snowplow_signals import (
    AtomicProperty,
    Attribute,
    Criteria,
    Criterion,
    SignalsSandbox,
    StreamAttributeGroup,
    domain_userid,
)

from signals_stream.devtools.broker import LocalBroker
from tests.dbt_seeds import ECOMMERCE_SEED, seed_rows
from tests.integration.history_data import LAST_PAGE, Expected, event_ms, produce_seed, shift_to_now
from tests.integration.test_history_group_test import GROUP
from tests.integration.workers import API_TOKEN, StreamApp, Worker, stream_app

pytestmark = pytest.mark.integration

# The backfilled group: the history tests' GROUP plus its last page with a TTL that the users
# whose only events are of 2022-10-25 (about 1,397 h before the newest) outlived *on event
# time*, and no other user did (every other last event is at most 843 h old). Folded on the
# wall clock, every user's would be fresh.
TTL = timedelta(hours=1000)
BF_GROUP = GROUP.model_copy(
    update={
        "attributes": [
            *GROUP.attributes,
            LAST_PAGE.model_copy(update={"name": "last_page_ttl", "ttl": TTL}),
        ]
    }
)
FIRST_PART = 600  # seed lines produced (and consumed) before the publication
SECOND_PART = 720  # up to here right after it (before the tasks take their end offsets)
ATTRIBUTES = [a.name for a in BF_GROUP.attributes]
OTHER = StreamAttributeGroup(
    name="bf_other",
    version=1,
    attribute_key=domain_userid,
    owner="backfill@example.com",
    attributes=[
        Attribute(
            name="accel_events",
            type="int64",
            events=[],
            aggregation="counter",
            criteria=Criteria(all=[Criterion.eq(AtomicProperty(name="app_id"), "ecom-accel")]),
        )
    ],
)
# Rate-limited and checkpointed often: a task over ~210 records runs for seconds.
BACKFILL_ENV = {"SIGNALS_BACKFILL_MAX_RATE": "25", "SIGNALS_BACKFILL_CHECKPOINT_RECORDS": "40"}


def _since(delta_ms: int) -> str:
    oldest = min(event_ms(r["collector_tstamp"]) for r in seed_rows(ECOMMERCE_SEED))
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((oldest + delta_ms) / 1000 - 86_400))


def _expected(delta_ms: int) -> dict[str, dict[str, Any]]:
    now_ms = time.time_ns() // 1_000_000
    users: dict[str, Expected] = defaultdict(Expected)
    for row in seed_rows(ECOMMERCE_SEED):
        if row["domain_userid"]:
            users[row["domain_userid"]].add(row, event_ms(row["derived_tstamp"]) + delta_ms, now_ms)
    ttl_ms = int(TTL.total_seconds() * 1000)
    return {
        user: {
            **e.values(),
            "last_page_ttl": e.last[2] if e.last and now_ms - e.last[0] < ttl_ms else None,
        }
        for user, e in users.items()
    }


def _on_any_clock(values: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Without the TTL'd attribute: a live group judges TTLs on the wall clock of its folds."""
    return {u: {k: v for k, v in vs.items() if k != "last_page_ttl"} for u, vs in values.items()}


def _values(
    worker: Worker, group: str, ids: list[str], attributes: list[str] = ATTRIBUTES
) -> dict[str, dict[str, Any]]:
    body = {
        "attribute_keys": {"domain_userid": ids},
        "attributes": [f"{group}_v1:{name}" for name in attributes],
    }
    status, raw = worker.request("POST", "/api/v1/get-online-attributes", body, timeout=10)
    assert status == 200, raw
    columns = json.loads(raw)
    found = {}
    for n, user in enumerate(columns["domain_userid"]):
        values = {name: columns[name][n] for name in attributes}
        values["categories"] = sorted(values["categories"] or [])
        found[user] = values
    return found


def _wait_values(
    worker: Worker, group: str, expected: dict[str, dict[str, Any]], timeout_s: float = 120
) -> dict[str, dict[str, Any]]:
    """The group's values once they equal ``expected`` (or, at the deadline, as they are)."""
    deadline = time.monotonic() + timeout_s
    got: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, AssertionError):
            got = _values(worker, group, sorted(expected))
            got = {u: {k: vs[k] for k in expected[u]} for u, vs in got.items() if u in expected}
            if got == expected:
                return got
        time.sleep(1.0)
    return got


def _tasks(worker: Worker) -> list[dict[str, Any]]:
    with contextlib.suppress(OSError, AssertionError):
        return list(worker.stats()["backfills"])
    return []


def _wait_done(worker: Worker, tasks: int, timeout_s: float = 120) -> list[dict[str, Any]]:
    """The backfill tasks once ``tasks`` of them are done (or, at the deadline, as they are)."""
    deadline = time.monotonic() + timeout_s
    found = _tasks(worker)
    while time.monotonic() < deadline:
        found = _tasks(worker)
        if len(found) == tasks and all(t["state"] == "done" for t in found):
            break
        time.sleep(0.5)
    return found


def _wait_reading(worker: Worker, timeout_s: float = 60) -> list[dict[str, Any]]:
    """The tasks once one has checkpointed part of its range and still reads."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = _tasks(worker)
        if any(t["state"] == "running" and t["first"] < t["next"] < t["end"] for t in found):
            return found
        time.sleep(0.1)
    raise AssertionError(f"no backfill task read part of its range:\n{worker.log_tail()}")


def _publish_backfilled(worker: Worker, name: str, since: str) -> dict[str, Any]:
    """Published through the registry API as the SDK posts it; the answer."""
    group = BF_GROUP.model_copy(
        update={"name": name, "backfill_since_tstamp": datetime.fromisoformat(since)}
    )
    body = {**group.model_dump(mode="json", exclude_none=True), "is_published": True}
    status, raw = worker.request("POST", "/api/v1/registry/attribute_groups/", body, timeout=30)
    assert status == 200, raw
    return dict(json.loads(raw))


def _first_stamps(bootstrap: str, topic: str) -> dict[int, int]:
    """Each partition's first record's timestamp, read with a plain consumer."""

    async def read() -> dict[int, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=[bootstrap], enable_auto_commit=False)
        await consumer.start()
        try:
            parts = [
                TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            found: dict[int, int] = {}
            while len(found) < len(parts):
                for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                    if records and tp.partition not in found:
                        found[tp.partition] = records[0].timestamp
                        consumer.pause(tp)
            return found
        finally:
            await consumer.stop()

    return asyncio.run(read())


def _iso_ms(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def _start(app: StreamApp, state: Path, env: dict[str, str] | None = None) -> Worker:
    state.mkdir(parents=True, exist_ok=True)
    worker = Worker(env or app.env(state / "data", **BACKFILL_ENV), state / "worker.log")
    worker.wait_healthy()
    return worker


def _consume_first_part(
    app: StreamApp, broker: LocalBroker, worker: Worker, delta: int, *others: Worker
) -> None:
    SignalsSandbox(api_url=worker.url, sandbox_token=API_TOKEN).publish([OTHER])
    produce_seed(broker.bootstrap, app.input_topic, delta, slice(0, FIRST_PART))
    with_id = sum(1 for r in list(seed_rows(ECOMMERCE_SEED))[:FIRST_PART] if r["domain_userid"])
    deadline = time.monotonic() + 120
    applied = 0
    while applied < with_id:  # over every worker: each folds its partitions' share
        assert time.monotonic() < deadline, f"only {applied} of {with_id} applied"
        time.sleep(0.2)
        with contextlib.suppress(OSError, AssertionError):
            applied = sum(int(w.stats()["applied"]) for w in (worker, *others))


def _reference_values(
    app: StreamApp, broker: LocalBroker, state: Path, expected: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """An app of its own whose identical group was live from its first event."""
    ref = stream_app(broker, "bf-ref")
    definitions = state / "reference.json"
    group = BF_GROUP.model_copy(update={"name": "bf_ref", "is_published": True})
    definitions.write_text(json.dumps({"attribute_groups": [group.model_dump(mode="json")]}))
    env = ref.env(
        state / "ref-data", SIGNALS_INPUT_TOPIC=app.input_topic,
        SIGNALS_DEFINITIONS=str(definitions),
    )  # fmt: skip
    worker = Worker(env, state / "ref.log")
    try:
        worker.wait_healthy()
        return _wait_values(worker, "bf_ref", _on_any_clock(expected))
    finally:
        worker.stop()


def _cli(app: StreamApp, worker: Worker, state: Path, *args: str) -> str:
    env = {
        **os.environ, **app.env(state / "cli"), "SIGNALS_WORKER_URL": worker.url, "COLUMNS": "200",
    }  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "signals_stream.cli", "backfill", *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def _check_the_commands(
    app: StreamApp, worker: Worker, state: Path, delta: int, first: str, log_start: int
) -> None:
    """``backfill status`` draws the done tasks; ``start`` fills the group again (a new id),
    exactly; ``cancel`` stops one."""
    shown = _cli(app, worker, state, "status")
    assert shown.count(first) == app.partitions and shown.count("done") == app.partitions, shown
    assert "log starts " in shown, shown
    assert "━" in shown  # the bars
    later = _since(delta + 1000)
    started = _cli(app, worker, state, "start", "bf_new", "--since", later)
    assert f"the input log starts at {_iso_ms(log_start)}" in started, started
    deadline = time.monotonic() + 60
    while {t["backfill"] for t in _tasks(worker)} == {first}:
        assert time.monotonic() < deadline, "no new backfill"
        time.sleep(0.2)
    second = next(t["backfill"] for t in _tasks(worker) if t["backfill"] != first)
    _wait_done(worker, 2 * app.partitions)
    assert _wait_values(worker, "bf_new", _expected(delta)) == _expected(delta)
    _cli(app, worker, state, "start", "bf_new", "--since", _since(delta + 2000))
    while len({t["backfill"] for t in _tasks(worker)}) < 3:
        assert time.monotonic() < deadline + 60, "no third backfill"
        time.sleep(0.2)
    third = next(t["backfill"] for t in _tasks(worker) if t["backfill"] not in (first, second))
    _cli(app, worker, state, "cancel", third)
    shown = _cli(app, worker, state, "status")
    assert shown.count(third) == app.partitions and "cancelled" in shown, shown


def test_publish_validates_backfill_since(kafka_broker: LocalBroker, tmp_path: Path) -> None:
    app = stream_app(kafka_broker, "bf-valid")
    worker = _start(app, tmp_path)
    try:
        body = GROUP.model_dump(mode="json", exclude_none=True)
        for bad in ("last tuesday", 1_700_000_000, "2999-01-01T00:00:00Z"):
            body["backfill_since_tstamp"] = bad
            status, raw = worker.request("POST", "/api/v1/registry/attribute_groups/", body)
            assert status == 422, raw
            assert b"backfill_since_tstamp" in raw
    finally:
        worker.stop()


def test_a_group_published_later_is_filled_exactly_across_the_seam(
    kafka_broker: LocalBroker, tmp_path: Path
) -> None:
    app = stream_app(kafka_broker, "backfill")
    delta, _ = shift_to_now()
    worker = _start(app, tmp_path)
    try:
        _consume_first_part(app, kafka_broker, worker, delta)
        # The start is a day before the first record: the log does not hold it (as when
        # retention removed it); the answer names the time the log holds every partition from.
        firsts = _first_stamps(kafka_broker.bootstrap, app.input_topic)
        published = _publish_backfilled(worker, "bf_new", _since(delta))
        produce_seed(kafka_broker.bootstrap, app.input_topic, delta, slice(FIRST_PART, SECOND_PART))
        # The rest while the tasks read (past the end offsets they took: live road only).
        during = _wait_reading(worker)
        produce_seed(kafka_broker.bootstrap, app.input_topic, delta, slice(SECOND_PART, None))
        tasks = _wait_done(worker, app.partitions)
        expected = _expected(delta)
        got = _wait_values(worker, "bf_new", expected)
        stats = worker.stats()
        metrics = worker.get("/metrics")[1].decode()
        _check_the_commands(
            app, worker, tmp_path, delta, tasks[0]["backfill"], max(firsts.values())
        )
    finally:
        worker.stop()
    assert got == expected
    assert len(tasks) == app.partitions and {t["state"] for t in tasks} == {"done"}, tasks
    assert all(t["remaining"] == 0 for t in tasks)
    assert {t["partition"]: t["earliest_ms"] for t in tasks} == firsts
    earliest = datetime.fromisoformat(published["backfill_earliest_available_tstamp"])
    assert round(earliest.timestamp() * 1000) == max(firsts.values()), published
    # Both roads fed the new slots, and they overlapped: the backfill road met events that the
    # live road had folded (skipped, ``l``).
    assert stats["backfill_applied"] > 0 and stats["backfill_live"] > 0, stats
    assert any(t["next"] < t["end"] for t in during), during
    bid = tasks[0]["backfill"]
    for p in range(app.partitions):
        labels = f'backfill="{bid}",group="bf_new",partition="{p}"'
        assert f"signals_backfill_remaining_records{{{labels}}} 0.0" in metrics, metrics
        read = next(t["read"] for t in tasks if t["partition"] == p)
        assert f"signals_backfill_records_total{{{labels}}} {float(read)}" in metrics
    # On event time, the TTL expired some users' value; folded on the wall clock it would not.
    assert (
        {u for u, v in got.items() if v["last_page"] and v["last_page_ttl"] is None}
        == {
            u
            for u, v in expected.items()
            if v["last_page"] is not None and v["last_page_ttl"] is None
        }
        != set()
    )
    assert _on_any_clock(_reference_values(app, kafka_broker, tmp_path, expected)) == _on_any_clock(
        got
    )


def test_a_sigkill_during_the_backfill_still_gives_exact_values(
    kafka_broker: LocalBroker, tmp_path: Path
) -> None:
    app = stream_app(kafka_broker, "bf-kill")
    delta, _ = shift_to_now()
    env = app.env(tmp_path / "data", **BACKFILL_ENV)
    worker = _start(app, tmp_path, env)
    try:
        _consume_first_part(app, kafka_broker, worker, delta)
        _publish_backfilled(worker, "bf_new", _since(delta))
        produce_seed(kafka_broker.bootstrap, app.input_topic, delta, slice(FIRST_PART, None))
        checkpointed = _wait_reading(worker)
        worker.kill()
    finally:
        worker.stop()
    worker = _start(app, tmp_path, env)
    try:
        tasks = _wait_done(worker, app.partitions)
        expected = _expected(delta)
        got = _wait_values(worker, "bf_new", expected)
    finally:
        worker.stop()
    assert got == expected
    assert {t["state"] for t in tasks} == {"done"}, tasks
    # Resumed from the checkpoints, not started again (a new task would have read == total).
    resumed = {(t["backfill"], t["partition"]): t for t in checkpointed if t["next"] > t["first"]}
    assert resumed
    for t in tasks:
        if (t["backfill"], t["partition"]) in resumed:
            assert t["first"] == resumed[(t["backfill"], t["partition"])]["first"]


def test_two_workers_and_one_killed_during_the_backfill_give_exact_values(
    kafka_broker: LocalBroker, tmp_path: Path
) -> None:
    """Tasks spread over two workers; one is killed after a checkpoint, its partitions and
    their tasks move to the other, which resumes them from the checkpoints."""
    app = stream_app(kafka_broker, "bf-two")
    delta, _ = shift_to_now()
    first = _start(app, tmp_path / "a")
    second = _start(app, tmp_path / "b")
    try:
        _consume_first_part(app, kafka_broker, first, delta, second)
        _publish_backfilled(first, "bf_new", _since(delta))
        produce_seed(kafka_broker.bootstrap, app.input_topic, delta, slice(FIRST_PART, None))
        _wait_reading(first)
        spread = [len(_tasks(first)), len(_tasks(second))]
        first.kill()
        tasks = _wait_done(second, app.partitions, timeout_s=180)
        expected = _expected(delta)
        got = _wait_values(second, "bf_new", expected, timeout_s=120)
    finally:
        first.stop()
        second.stop()
    assert spread[0] > 0 and spread[1] > 0, spread  # both ran tasks
    assert len(tasks) == app.partitions and {t["state"] for t in tasks} == {"done"}, tasks
    assert got == expected
