"""Training datasets: 100,000 user-supplied anchors over ~1 million events in DuckDB (the
bundle's SQL: anchors, point-in-time attributes, dataset), against a bare scan of the same
events in the same run.

Run: ``python bench/bench_datasets.py [--copies 1200] [--anchors 100000]``. The events are
``bench_batch``'s (the 834 ecommerce seed events copied ``copies`` times with distinct user,
session and event ids; 1200 copies = 1,000,800 events) in an in-memory DuckDB; the anchors are
``anchors`` of those events' (user, event time + 1 ms), labelled by parity; the group is
``bench_batch``'s 20 attributes keyed on ``domain_userid``. Reported: wall time of each
stage, anchors/s, events/s (events in the table over the dataset's wall time), the bare scan's
events/s and the ratio, and the process's peak RSS (DuckDB's memory included).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_batch import _group, _warehouse  # noqa: E402
from signals_stream.batch.compile import DEFAULT_EVENTS_TABLE, EventsTable  # noqa: E402
from signals_stream.datasets.bundle import build_bundle, create_table_sql  # noqa: E402
from signals_stream.datasets.models import DatasetBundleRequest  # noqa: E402
from signals_stream.warehouse.sql import TableRef  # noqa: E402
from tests.batch_events import column_types  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=1200)
    parser.add_argument("--anchors", type=int, default=100_000)
    args = parser.parse_args()
    con, events = _warehouse(args.copies)
    con.execute(
        "UPDATE atomic.events SET domain_sessionid = domain_sessionid || '-' || "
        "split_part(domain_userid, '-', 2)"
    )
    started = time.perf_counter()
    con.execute("SELECT COUNT(DISTINCT domain_userid), MAX(derived_tstamp), "
                "SUM(length(event_id)) FROM atomic.events").fetchall()  # fmt: skip
    scan_s = time.perf_counter() - started
    con.execute("CREATE SCHEMA bench")
    con.execute(
        "CREATE TABLE bench.anchors AS SELECT domain_userid, "
        "derived_tstamp + INTERVAL 1 MILLISECOND AS anchor_ts, hash(event_id) % 2 = 0 AS label "
        f"FROM atomic.events USING SAMPLE {args.anchors} ROWS (reservoir, 7)"
    )
    group = _group(offline=False)
    request = DatasetBundleRequest.parse(
        {
            "anchors": {"mode": "user_supplied", "source": {"schema": "bench", "table": "anchors"}},
            "attributes": {"attribute_groups": [group.to_wire()]},
        }
    )
    table = EventsTable.of(DEFAULT_EVENTS_TABLE, column_types(con), "duckdb")
    compile_started = time.perf_counter()
    bundle = build_bundle(request, table, dialect="duckdb", output=TableRef(None, "bench", ""))
    compile_ms = (time.perf_counter() - compile_started) * 1000
    stages = []
    build_started = time.perf_counter()
    for stage in bundle.stages:
        t0 = time.perf_counter()
        for sql in create_table_sql(stage, "duckdb"):
            con.execute(sql)
        stages.append((stage.table.table, time.perf_counter() - t0))
    build_s = time.perf_counter() - build_started
    (rows,) = con.execute("SELECT COUNT(*) FROM bench.signals_dataset").fetchone() or (0,)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"events {events:,}, anchors {rows:,}, attributes {len(group.attributes or ())}")
    for name, seconds in stages:
        print(f"  {name}: {seconds:.2f} s")
    rate = f"{rows / build_s:,.0f} anchors/s, {events / build_s:,.0f} events/s"
    print(f"dataset: {build_s:.2f} s (compile {compile_ms:.0f} ms) = {rate}")
    print(f"bare scan: {scan_s:.3f} s = {events / scan_s:,.0f} events/s; "
          f"dataset / scan time: {build_s / scan_s:.0f}x")  # fmt: skip
    print(f"peak RSS: {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
