"""Sync engine benchmark (#16): warehouse rows into the Profiles Store, against a bare SELECT.

For DuckDB (a file) and PostgreSQL (a server this script starts), one table of ``--rows``
rows (1 million by default) with an id, a timestamp and 10 fields (5 doubles, 3 strings, 2
integers), then, in the same run:
  (a) baseline: a bare ``SELECT`` of the same rows and columns, fetched whole through the same
      driver (DuckDB's Python API, psycopg);
  (b) sync: one worker on a local broker syncs the published warehouse group (its first run,
      every row): rows/s of the run (read, sent, acknowledged, watermark written) and rows/s
      until the owner has written every row into the entity rows (``synced_applied``), each
      with its ratio to (a);
  (c) peak memory: the worker's peak RSS (VmHWM) before the sync and at its end.

Run: python bench/bench_sync.py [--rows 1000000] [--engines duckdb,postgres]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import psycopg
from snowplow_signals import BatchSource, ExternalBatchAttributeGroup, Field, SignalsSandbox
from snowplow_signals import domain_userid as domain_userid_key

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from signals_stream.devtools.broker import LocalBroker  # noqa: E402
from tests.integration.workers import API_TOKEN, Worker, stream_app  # noqa: E402
from tests.postgres_server import postgres_server  # noqa: E402

FIELDS = [
    ("ltv", "double"), ("score", "double"), ("churn", "double"), ("aov", "double"),
    ("margin", "double"), ("tier", "string"), ("segment", "string"), ("country", "string"),
    ("orders", "int64"), ("visits", "int64"),
]  # fmt: skip
SQL_TYPES = {"double": "DOUBLE PRECISION", "string": "TEXT", "int64": "BIGINT"}
COLUMNS = ", ".join(f"{name} {SQL_TYPES[kind]}" for name, kind in FIELDS)
CREATE = f"CREATE TABLE crm.customers (domain_userid TEXT, updated_at TIMESTAMP, {COLUMNS})"
SELECT = f"SELECT domain_userid, updated_at, {', '.join(n for n, _ in FIELDS)} FROM crm.customers"
# Row i: its own values, so nothing compresses into one repeated row.
VALUES = (
    "'u' || i, TIMESTAMP '2026-12-01 00:00:00' + i * INTERVAL '1 millisecond', "
    "i * 0.5, i % 100 * 1.5, (i % 7) / 7.0, i % 250 * 0.25, i % 13 * 0.1, "
    "'tier' || (i % 4), 'segment' || (i % 11), 'c' || (i % 40), i % 50, i % 300"
)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bare_select(fetch: Callable[[], list[Any]], rows: int) -> float:
    started = time.perf_counter()
    got = fetch()
    elapsed = time.perf_counter() - started
    assert len(got) == rows, (len(got), rows)
    return rows / elapsed


def duckdb_warehouse(directory: Path, rows: int) -> tuple[str, str, Callable[[], list[Any]]]:
    path = directory / "bench.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE SCHEMA crm")
        conn.execute(CREATE)
        conn.execute(f"INSERT INTO crm.customers SELECT {VALUES} FROM range({rows}) t(i)")

    def fetch() -> list[Any]:
        with duckdb.connect(str(path), read_only=True) as conn:
            return conn.execute(SELECT).fetchall()

    return f"duckdb:///{path}", "bench", fetch


def postgres_warehouse(url: str, rows: int) -> tuple[str, str, Callable[[], list[Any]]]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA crm")
        conn.execute(CREATE.encode())
        conn.execute(
            f"INSERT INTO crm.customers SELECT {VALUES} FROM generate_series(0, {rows - 1}) i"
        )
        conn.execute("ANALYZE crm.customers")

    def fetch() -> list[Any]:
        with psycopg.connect(url) as conn:
            return conn.execute(SELECT.encode()).fetchall()

    return url, "postgres", fetch


def sync_run(broker: LocalBroker, directory: Path, url: str, database: str, rows: int) -> dict:
    app = stream_app(broker, "bench-sync")
    env = app.env(directory / "state", SIGNALS_WAREHOUSE_URL=url, SIGNALS_LOG_LEVEL="WARNING")
    worker = Worker(env, directory / "worker.log")
    try:
        worker.wait_healthy(timeout_s=180)
        before_mb = peak_rss_mb(worker.process.pid)
        group = ExternalBatchAttributeGroup(
            name="bench", version=1, owner="bench@example.com", attribute_key=domain_userid_key,
            fields=[Field(name=n, type=t) for n, t in FIELDS],  # type: ignore[arg-type]
            batch_source=BatchSource(
                name="crm", database=database, schema="crm", table="customers",
                timestamp_field="updated_at",
            ),
            backfill_since_tstamp=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
            refresh_rate=dt.timedelta(days=1),
        )  # fmt: skip
        published = time.perf_counter()
        SignalsSandbox(api_url=worker.url, sandbox_token=API_TOKEN).publish([group])
        deadline = published + 1800
        while True:
            try:
                stats = worker.stats()
            except OSError:  # TimeoutError: the worker is busy applying; ask again
                time.sleep(0.5)
                continue
            status = stats.get("sync", {}).get("bench:1", {})
            if stats["synced_applied"] >= rows and status.get("last_finished_ms"):
                break
            if status.get("last_error"):
                raise RuntimeError(status["last_error"])
            assert time.perf_counter() < deadline, status
            time.sleep(0.1)
        applied_s = time.perf_counter() - published
        run_s = (status["last_finished_ms"] - status["last_started_ms"]) / 1000
        assert status["rows_sent"] == rows, status
        return {
            "run_rows_s": rows / run_s,
            "applied_rows_s": rows / applied_s,
            "rss_before_mb": before_mb,
            "rss_peak_mb": peak_rss_mb(worker.process.pid),
        }
    finally:
        worker.stop()


def report(engine: str, rows: int, select_rows_s: float, sync: dict) -> None:
    print(f"{engine}: {rows:,} rows x {len(FIELDS)} fields")
    print(f"  bare SELECT (baseline)       {select_rows_s:>12,.0f} rows/s")
    print(
        f"  sync run (sent, acked)       {sync['run_rows_s']:>12,.0f} rows/s"
        f"   x{sync['run_rows_s'] / select_rows_s:.3f} of the SELECT"
    )
    print(
        f"  publish -> all rows applied  {sync['applied_rows_s']:>12,.0f} rows/s"
        f"   x{sync['applied_rows_s'] / select_rows_s:.3f} of the SELECT"
    )
    print(
        f"  worker peak RSS              {sync['rss_before_mb']:.0f} MB before the sync, "
        f"{sync['rss_peak_mb']:.0f} MB at its end"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--engines", default="duckdb,postgres")
    args = parser.parse_args()
    engines = args.engines.split(",")
    with LocalBroker() as broker:
        for engine in engines:
            with tempfile.TemporaryDirectory(prefix=f"bench-sync-{engine}-") as temp:
                directory = Path(temp)
                if engine == "duckdb":
                    url, database, fetch = duckdb_warehouse(directory, args.rows)
                    select_rows_s = bare_select(fetch, args.rows)
                    report(engine, args.rows, select_rows_s,
                           sync_run(broker, directory, url, database, args.rows))  # fmt: skip
                else:
                    with postgres_server() as server:
                        url, database, fetch = postgres_warehouse(server, args.rows)
                        select_rows_s = bare_select(fetch, args.rows)
                        report(engine, args.rows, select_rows_s,
                               sync_run(broker, directory, url, database, args.rows))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
