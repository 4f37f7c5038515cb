"""A range backfill on the real broker: ``signals-stream backfill start GROUP --since T --until
T2`` for a group already published and live.

The ecommerce seed is produced in collector-time order, each record stamped with its (shifted)
collector time, so each input partition's records between the first stamped at ``T`` and the
first stamped at ``T2`` (the offset range the backfill reads) are exactly the CSV rows
collected in ``[T, T2)``. The first part of the seed is consumed live, the range is chosen
inside it, and the rest of the seed is produced once the workers route with the new
publication. A range backfill is a new publication: every user's values must then equal a
plain computation from the CSV rows of the range plus those of the second part, no row of the
first part outside the range (before ``T``, or in the gap between ``T2`` and the restart), and
defaults for users with none.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from snowplow_signals import SignalsSandbox

from signals_stream.devtools.broker import LocalBroker
from signals_stream.devtools.replay import shift_record
from tests.dbt_seeds import ECOMMERCE_SEED, seed_rows, seed_tsv
from tests.integration.history_data import Expected, event_ms, shift_to_now
from tests.integration.test_backfill import _cli, _start, _tasks, _values, _wait_done
from tests.integration.test_history_group_test import GROUP
from tests.integration.workers import API_TOKEN, StreamApp, Worker, stream_app

pytestmark = pytest.mark.integration

RANGE_GROUP = GROUP.model_copy(update={"name": "range_user"})
FIRST_PART = 600  # lines (in collector-time order) consumed before the range backfill
RANGE = (150, 450)  # the range's first line and the first line after it, in that order
ATTRIBUTES = [a.name for a in RANGE_GROUP.attributes]


def _seed(delta_ms: int) -> list[tuple[int, dict[str, str], bytes]]:
    """(record time, CSV row, shifted TSV line) in collector-time order (ties: CSV order)."""
    rows = zip(seed_rows(ECOMMERCE_SEED), seed_tsv(ECOMMERCE_SEED), strict=True)
    stamped = [
        (event_ms(row["collector_tstamp"]) + delta_ms, n, row, line)
        for n, (row, line) in enumerate(rows)
    ]
    return [(t, row, shift_record(line.encode(), delta_ms)) for t, _, row, line in sorted(stamped)]


def _produce(bootstrap: str, topic: str, records: list[tuple[int, dict[str, str], bytes]]) -> None:
    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=[bootstrap], enable_idempotence=False)
        await producer.start()
        try:
            for stamp, _, value in records:
                await producer.send(topic, value, timestamp_ms=stamp)
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(produce())


def _boundary(seed: list[tuple[int, dict[str, str], bytes]], at: int) -> int:
    """The first line index at or after ``at`` whose time is above the previous line's (so
    "stamped at or after its time" starts exactly there)."""
    while seed[at][0] == seed[at - 1][0]:
        at += 1
    return at


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def _expected(
    seed: list[tuple[int, dict[str, str], bytes]], counted: list[int], delta_ms: int
) -> dict[str, dict[str, Any]]:
    """Every user's values over the lines ``counted`` (defaults for users with none)."""
    now_ms = time.time_ns() // 1_000_000
    users: dict[str, Expected] = defaultdict(Expected)
    for _, row, _ in seed:
        if row["domain_userid"]:
            users[row["domain_userid"]]  # noqa: B018 - every user, counted or not
    for n in counted:
        row = seed[n][1]
        if row["domain_userid"]:
            users[row["domain_userid"]].add(row, event_ms(row["derived_tstamp"]) + delta_ms, now_ms)
    return {user: e.values() for user, e in users.items()}


def _wait_values(
    worker: Worker, expected: dict[str, dict[str, Any]], timeout_s: float = 90
) -> dict[str, dict[str, Any]]:
    """The group's values once they equal ``expected`` (or, at the deadline, as they are)."""
    deadline = time.monotonic() + timeout_s
    got: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            got = _values(worker, "range_user", sorted(expected), ATTRIBUTES)
            if got == expected:
                break
        time.sleep(1.0)
    return got


def _wait_applied(workers: list[Worker], count: int, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    applied = 0
    while applied < count:
        assert time.monotonic() < deadline, f"only {applied} of {count} applied"
        time.sleep(0.2)
        with contextlib.suppress(OSError, AssertionError):
            applied = sum(int(w.stats()["applied"]) for w in workers)


def test_a_range_backfill_counts_the_range_and_then_live(
    kafka_broker: LocalBroker, tmp_path: Path
) -> None:
    app: StreamApp = stream_app(kafka_broker, "bf-range")
    delta, _ = shift_to_now()
    seed = _seed(delta)
    first, stop = _boundary(seed, RANGE[0]), _boundary(seed, RANGE[1])
    since_ms, until_ms = seed[first][0], seed[stop][0]
    worker = _start(app, tmp_path)
    try:
        SignalsSandbox(api_url=worker.url, sandbox_token=API_TOKEN).publish([RANGE_GROUP])
        time.sleep(2.0)  # live "within a few seconds"
        _produce(kafka_broker.bootstrap, app.input_topic, seed[:FIRST_PART])
        _wait_applied([worker], sum(1 for _, r, _ in seed[:FIRST_PART] if r["domain_userid"]))
        live_part = _expected(seed, list(range(FIRST_PART)), delta)
        assert _wait_values(worker, live_part) == live_part  # live from the start

        started = _cli(
            app, worker, tmp_path, "start", "range_user",
            "--since", _iso(since_ms), "--until", _iso(until_ms),
        )  # fmt: skip
        assert "range_user v1 over [" in started, started
        deadline = time.monotonic() + 60
        while len(_tasks(worker)) < app.partitions:  # the workers route with it by then
            assert time.monotonic() < deadline, f"no range backfill tasks:\n{worker.log_tail()}"
            time.sleep(0.2)
        _produce(kafka_broker.bootstrap, app.input_topic, seed[FIRST_PART:])

        tasks = _wait_done(worker, app.partitions)
        assert all(t["state"] == "done" and t["until_ms"] == until_ms for t in tasks), tasks
        # The tasks' offset ranges hold exactly the CSV rows collected in [T, T2).
        assert sum(t["end"] - t["first"] for t in tasks) == stop - first, (
            tasks,
            since_ms,
            until_ms,
        )
        assert sum(t["read"] for t in tasks) == stop - first
        counted = list(range(first, stop)) + list(range(FIRST_PART, len(seed)))
        expected = _expected(seed, counted, delta)
        assert _wait_values(worker, expected) == expected
        # The gap and the lines before the range are really left out, and some users only
        # have lines there: they read defaults.
        assert expected != _expected(seed, list(range(first, len(seed))), delta)
        assert any(v["events_seen"] == 0 for v in expected.values())
        shown = _cli(app, worker, tmp_path, "status")
        assert f"until {_iso(until_ms)[:19]}Z" in shown, shown
    finally:
        worker.stop()


def test_publish_validates_backfill_until(kafka_broker: LocalBroker, tmp_path: Path) -> None:
    app = stream_app(kafka_broker, "bf-until")
    worker = _start(app, tmp_path)
    try:
        body = GROUP.model_dump(mode="json", exclude_none=True)
        bad = [
            {"backfill_until_tstamp": "2024-01-01T00:00:00Z"},  # no since
            {"backfill_since_tstamp": "2024-01-02T00:00:00Z",
             "backfill_until_tstamp": "2024-01-01T00:00:00Z"},  # before since
            {"backfill_since_tstamp": "2024-01-01T00:00:00Z", "backfill_until_tstamp": 17e8},
        ]  # fmt: skip
        for fields in bad:
            status, raw = worker.request(
                "POST", "/api/v1/registry/attribute_groups/", {**body, **fields}
            )
            assert status == 422 and b"backfill_until_tstamp" in raw, (fields, raw)
        good = {
            "backfill_since_tstamp": "2024-01-01T00:00:00Z",
            "backfill_until_tstamp": "2024-01-02T00:00:00",  # naive: UTC
        }
        status, raw = worker.request("POST", "/api/v1/registry/attribute_groups/", {**body, **good})
        assert status == 200, raw
        status, raw = worker.get(f"/api/v1/registry/attribute_groups/{GROUP.name}/versions/1")
        assert status == 200 and b"2024-01-02T00:00:00" in raw, raw
    finally:
        worker.stop()
