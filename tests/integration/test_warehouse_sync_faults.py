"""The sync engine when things go wrong, on the real broker with a DuckDB warehouse file:

- a missing table, a missing column, a warehouse that is gone: a clear error in the status
  endpoint, the stream and the other groups go on, the next run (``refresh_rate`` PT1M)
  retries and succeeds once the warehouse is fixed, and nothing synced before is lost;
- a SIGKILL of the worker in the middle of a run: after the restart every row of the table
  is served with its own values, and at most the one unacknowledged chunk was sent twice;
- two workers: each group is run by one of them, once (runs and rows counted per group
  across both), and when that worker dies the other picks its groups up.

Expected values come from the rows the test inserts (and page views counted from the TSV
lines), never from the engine.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
from snowplow_signals import BatchSource, ExternalBatchAttributeGroup, Field, SignalsSandbox
from snowplow_signals import domain_userid as domain_userid_key

from signals_stream.devtools.produce import produce_records
from signals_stream.engine.synced import group_id
from signals_stream.kafka.partitioning import entity_partition
from tests.integration.expected import generated_lines, lifetime_definitions, page_views
from tests.integration.test_warehouse_sync import NOW, duckdb_table, stored_status, wait_for
from tests.integration.workers import API_TOKEN, Worker, stream_app

pytestmark = pytest.mark.integration


def warehouse_group(name: str, table: str = "customers", fields: tuple[str, ...] = ("ltv", "tier")):  # type: ignore[no-untyped-def]
    types = {"ltv": "double", "tier": "string", "churn": "double"}
    return ExternalBatchAttributeGroup(
        name=name, version=1, owner="tests@example.com", attribute_key=domain_userid_key,
        fields=[Field(name=f, type=types[f]) for f in fields],
        batch_source=BatchSource(
            name="crm", database="shop", schema="crm", table=table, timestamp_field="updated_at",
        ),
        refresh_rate=dt.timedelta(minutes=1),
    )  # fmt: skip


def served(worker: Worker, group: str, field: str, users: list[str]) -> dict[str, Any]:
    code, body = worker.request(
        "POST", "/api/v1/get-online-attributes",
        {"attribute_keys": {"domain_userid": users}, "attributes": [f"{group}_v1:{field}"]},
        timeout=30,
    )  # fmt: skip
    if code == 503:  # partitions being assigned: not an answer yet (wait_for tries again)
        return {"unavailable": body}
    assert code == 200, body
    answer = orjson.loads(body)
    return dict(zip(answer["domain_userid"], answer[field], strict=True))


def status_of(worker: Worker, name: str) -> tuple[str, str | None]:
    answer = stored_status(worker, name)
    return answer["status"], answer["last_error"]


@pytest.mark.timeout(600)
def test_failing_groups_report_and_retry_while_the_rest_goes_on(
    kafka_broker, tmp_path: Path
) -> None:
    views = page_views(lines := generated_lines(users=8, seed=16, count=400))
    with duckdb_table(tmp_path) as (url, _, insert):
        rows = [(f"user-{i}", NOW - dt.timedelta(minutes=i), float(i), "gold") for i in range(4)]
        insert(rows)
        path = Path(url.removeprefix("duckdb:///"))
        app = stream_app(kafka_broker, "sync-faults")
        env = app.env(
            tmp_path / "state", SIGNALS_WAREHOUSE_URL=url,
            SIGNALS_DEFINITIONS=str(lifetime_definitions(tmp_path / "definitions.yaml")),
        )  # fmt: skip
        worker = Worker(env, tmp_path / "w.log")
        try:
            worker.wait_healthy(timeout_s=120)
            signals = SignalsSandbox(api_url=worker.url, sandbox_token=API_TOKEN)
            signals.publish(
                [
                    warehouse_group("customers"),
                    warehouse_group("missing", table="nothing_here"),
                    warehouse_group("wrongcols", fields=("ltv", "churn")),
                ]
            )
            ids = [r[0] for r in rows]
            wait_for(
                lambda: served(worker, "customers", "ltv", ids), {u: v for u, _, v, _ in rows}, 90
            )
            wait_for(lambda: status_of(worker, "missing"),
                     ("failed", "table crm.nothing_here does not exist"), 60)  # fmt: skip
            wait_for(lambda: status_of(worker, "wrongcols"),
                     ("failed", "table crm.customers has no column churn"), 60)  # fmt: skip
            failed = stored_status(worker, "missing")
            assert failed["errors"][0]["message"] == "table crm.nothing_here does not exist"
            assert failed["records_synced"] == 0 and failed["failed_runs"] >= 1
            # The stream goes on beside the failing groups.
            asyncio.run(produce_records([kafka_broker.bootstrap], app.input_topic,
                                        ((None, line) for line in lines)))  # fmt: skip
            users = sorted(views)
            wait_for(lambda: served(worker, "ecommerce_user", "page_views", users),
                     {u: views[u] for u in users}, 90)  # fmt: skip

            # The warehouse goes away: the next run fails, and what was synced stays served.
            hidden = path.with_suffix(".away")
            path.rename(hidden)
            wait_for(lambda: status_of(worker, "customers")[0], "failed", 90)
            error = status_of(worker, "customers")[1] or ""
            assert error.startswith("DuckDB warehouse file") and error.endswith(
                f"{path.name} does not exist"
            ), error
            assert served(worker, "customers", "ltv", ids) == {u: v for u, _, v, _ in rows}
            # Back, with the missing table and column added: the next runs succeed.
            hidden.rename(path)
            with duckdb.connect(str(path)) as conn:
                conn.execute("CREATE TABLE crm.nothing_here AS SELECT * FROM crm.customers")
                conn.execute("ALTER TABLE crm.customers ADD COLUMN churn DOUBLE DEFAULT 0.5")
            for name in ("customers", "missing", "wrongcols"):
                wait_for(lambda n=name: status_of(worker, n), ("completed", None), 90)
            wait_for(lambda: served(worker, "missing", "tier", ids), dict.fromkeys(ids, "gold"), 30)
            wait_for(lambda: served(worker, "wrongcols", "churn", ids), dict.fromkeys(ids, 0.5), 30)
            assert served(worker, "customers", "ltv", ids) == {u: v for u, _, v, _ in rows}
        finally:
            worker.stop()


ROWS_TO_KILL = 12_000
CHUNK = 300


@pytest.mark.timeout(600)
def test_a_sigkill_during_a_sync_loses_and_duplicates_nothing(kafka_broker, tmp_path: Path) -> None:
    with duckdb_table(tmp_path) as (url, _, _insert):
        path = url.removeprefix("duckdb:///")
        with duckdb.connect(path) as conn:  # distinct values and times, computed here too
            conn.execute(
                "INSERT INTO crm.customers SELECT 'u' || i, "
                "TIMESTAMP '2026-12-01 00:00:00' + i * INTERVAL 1 SECOND, i * 1.5, 't' || (i % 7) "
                f"FROM range({ROWS_TO_KILL}) t(i)"
            )
        expected = {f"u{i}": i * 1.5 for i in range(ROWS_TO_KILL)}
        app = stream_app(kafka_broker, "sync-kill")
        env = app.env(tmp_path / "state", SIGNALS_WAREHOUSE_URL=url,
                      SIGNALS_SYNC_CHUNK_ROWS=str(CHUNK))  # fmt: skip
        group = warehouse_group("customers")
        group.backfill_since_tstamp = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
        worker = Worker(env, tmp_path / "w1.log")
        try:
            worker.wait_healthy(timeout_s=120)
            SignalsSandbox(api_url=worker.url, sandbox_token=API_TOKEN).publish([group])
            deadline = time.monotonic() + 120
            while True:  # kill once the run is well under way, and not over
                status = worker.stats().get("sync", {}).get("customers:1", {})
                if status.get("running") and status.get("rows_sent", 0) >= 10 * CHUNK:
                    break
                assert not status.get("last_finished_ms"), f"the run ended first: {status}"
                assert time.monotonic() < deadline, status
                time.sleep(0.02)
            worker.kill()
        finally:
            worker.stop()
        worker = Worker(env, tmp_path / "w2.log")
        try:
            worker.wait_healthy(timeout_s=120)
            wait_for(lambda: stored_status(worker)["status"], "completed", 120)
            after = stored_status(worker)
            assert after["watermark"]["id"] == f"u{ROWS_TO_KILL - 1}"
            # Sent twice: at most the chunk in flight at the kill (sent, its watermark not).
            assert ROWS_TO_KILL <= after["records_synced"] <= ROWS_TO_KILL + CHUNK, after
            assert after["runs"] == 2 and after["rows_read"] < ROWS_TO_KILL
            ids = list(expected)
            got: dict[str, Any] = {}
            for start in range(0, len(ids), 100):  # at most 100 ids a request
                got |= served(worker, "customers", "ltv", ids[start : start + 100])
            assert got == expected
        finally:
            worker.stop()


def group_names_on_every_partition(partitions: int) -> list[str]:
    """Group names whose ``<name>:1`` hashes to each partition once (so both workers run
    some)."""
    found: dict[int, str] = {}
    i = 0
    while len(found) < partitions:
        name = f"g{i}"
        found.setdefault(entity_partition(group_id(name, 1).encode(), partitions), name)
        i += 1
    return [found[p] for p in range(partitions)]


@pytest.mark.timeout(600)
def test_two_workers_sync_each_group_once_and_take_over_a_dead_runners(
    kafka_broker, tmp_path: Path
) -> None:
    with duckdb_table(tmp_path) as (url, _, insert):
        rows = [(f"user-{i}", NOW - dt.timedelta(minutes=i), float(i), "gold") for i in range(6)]
        insert(rows)
        app = stream_app(kafka_broker, "sync-two")
        names = group_names_on_every_partition(app.partitions)
        envs = [app.env(tmp_path / f"state{n}", SIGNALS_WAREHOUSE_URL=url) for n in (1, 2)]
        workers = [Worker(env, tmp_path / f"w{n}.log") for n, env in enumerate(envs)]
        try:
            for worker in workers:
                worker.wait_healthy(timeout_s=120)
            for worker in workers:  # both in the group, two entity partitions each
                wait_for(
                    lambda w=worker: orjson.loads(w.get("/healthz")[1])["entity_partitions"], 2, 90
                )
            SignalsSandbox(api_url=workers[0].url, sandbox_token=API_TOKEN).publish(
                [warehouse_group(n) for n in names]
            )
            ids = [r[0] for r in rows]
            for name in names:
                wait_for(lambda n=name: stored_status(workers[0], n)["status"], "completed", 90)
            runners: dict[str, list[int]] = {}
            for index, worker in enumerate(workers):
                for gid, status in worker.stats()["sync"].items():
                    runners.setdefault(gid, []).append(index)
                    assert status["total_rows_sent"] == len(rows), (gid, status)
            assert sorted(runners) == sorted(group_id(n, 1) for n in names)
            assert all(len(r) == 1 for r in runners.values()), runners  # one runner a group
            assert {r[0] for r in runners.values()} == {0, 1}  # both run some
            for name in names:
                answer = stored_status(workers[1], name)  # every worker answers the same
                assert (answer["runs"], answer["records_synced"]) == (1, len(rows)), answer
                assert served(workers[1], name, "ltv", ids) == {u: v for u, _, v, _ in rows}

            # The runner of the first group dies; the other worker takes its groups over and
            # syncs the rows added since (without waiting for refresh_rate).
            dead = runners[group_id(names[0], 1)][0]
            survivor = workers[1 - dead]
            workers[dead].kill()
            insert([("user-new", NOW + dt.timedelta(seconds=1), 99.0, "new")])
            for name in names:
                wait_for(lambda n=name: served(survivor, n, "ltv", ["user-new"]),
                         {"user-new": 99.0}, 120)  # fmt: skip
            assert sorted(survivor.stats()["sync"]) == sorted(group_id(n, 1) for n in names)
        finally:
            for worker in workers:
                worker.stop()
