"""Batch engine: a 20-attribute group over ~1 million events in DuckDB, against the stream
engine's fold of the same events, in the same run.

Run: ``python bench/bench_batch.py [--copies 1200] [--stream-copies 120]``. The events are
the 834 ecommerce seed events (values typed as the tracker sends them) copied ``copies``
times with a distinct user id and event id per copy (1200 copies = 1,000,800 events,
70,800 users), in an in-memory DuckDB ``atomic.events``. Batch: wall time of the compiled
query (DuckDB uses every core it is given). Stream: the pure-core fold of the same events
(already parsed, per user as a live batch would be; one thread), on the first
``stream-copies`` copies' events, reported as events/s; the ratio is batch events/s over
stream events/s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from signals_stream.batch.compile import DEFAULT_EVENTS_TABLE, EventsTable, compile_group  # noqa: E402
from signals_stream.definitions import AttributeGroup  # noqa: E402
from signals_stream.engine import Catalog, fold_events  # noqa: E402
from signals_stream.engine.row import EntityRow  # noqa: E402
from signals_stream.events.fields import FIELD_INDEX  # noqa: E402
from signals_stream.events.parse import parse_tsv  # noqa: E402
from tests.batch_events import column_types, load_duckdb, typed_csv  # noqa: E402
from tests.dbt_seeds import ECOMMERCE_SEED, seed_tsv  # noqa: E402
from tests.unit.batch.ecommerce_group import batch_group  # noqa: E402

# Twenty of the reference group's attributes: every aggregation, a period, a TTL, criteria.
ATTRIBUTES = (
    "events", "product_views", "price_sum", "price_min", "price_max", "price_mean",
    "first_category", "last_action", "categories", "top_action", "rare_action",
    "action_counts", "distinct_products", "days_since_first", "hours_since_last",
    "active_days", "busiest_hour", "cart_changes", "recent_events", "session_events",
)  # fmt: skip


def _group(offline: bool) -> AttributeGroup:
    full = batch_group()
    chosen = [a.to_wire() for a in full.attributes or () if a.name in ATTRIBUTES]
    body = {**full.to_wire(), "name": "bench_batch", "attributes": chosen, "offline": offline}
    return AttributeGroup.parse(body)


def _warehouse(copies: int) -> tuple[duckdb.DuckDBPyConnection, int]:
    con = duckdb.connect()
    with tempfile.TemporaryDirectory() as tmp:
        load_duckdb(con, typed_csv(Path(tmp)))
    con.execute("ALTER TABLE atomic.events RENAME TO seed")
    con.execute(
        "CREATE TABLE atomic.events AS SELECT * REPLACE ("
        "domain_userid || '-' || CAST(c.range AS VARCHAR) AS domain_userid, "
        "substr(event_id, 1, 32) || printf('%04x', c.range) AS event_id) "
        f"FROM atomic.seed, range({copies}) AS c WHERE domain_userid IS NOT NULL"
    )
    (n,) = con.execute("SELECT COUNT(*) FROM atomic.events").fetchone() or (0,)
    return con, int(n)


def _stream_events(copies: int) -> dict[str, list[object]]:
    lines = [line.split("\t") for line in seed_tsv(ECOMMERCE_SEED)]
    by_user: dict[str, list[object]] = {}
    uid, eid = FIELD_INDEX["domain_userid"], FIELD_INDEX["event_id"]
    for copy in range(copies):
        for fields in lines:
            if not fields[uid]:
                continue
            row = list(fields)
            row[uid] = f"{fields[uid]}-{copy}"
            row[eid] = f"{fields[eid][:32]}{copy:04x}"  # still a UUID, as in the warehouse
            by_user.setdefault(row[uid], []).append(parse_tsv("\t".join(row)))
    return by_user


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=1200)
    parser.add_argument("--stream-copies", type=int, default=120, help="copies folded")
    args = parser.parse_args()
    now_ms = int(time.time() * 1000)

    con, n = _warehouse(args.copies)
    table = EventsTable.of(DEFAULT_EVENTS_TABLE, column_types(con), "duckdb")
    started = time.perf_counter()
    query = compile_group(_group(offline=True), table, dialect="duckdb", now_ms=now_ms)
    compiled_s = time.perf_counter() - started
    started = time.perf_counter()
    rows = con.execute(f"CREATE TABLE out AS {query.sql}").fetchall()
    (entities,) = con.execute("SELECT COUNT(*) FROM out").fetchone() or (0,)
    batch_s = time.perf_counter() - started
    del rows

    catalog = Catalog.build([_group(offline=False)])
    program = catalog.programs["domain_userid"]
    events = _stream_events(args.stream_copies)
    folded = sum(len(v) for v in events.values())
    started = time.perf_counter()
    for user_events in events.values():
        fold_events(EntityRow(), program, user_events, now_ms)  # type: ignore[arg-type]
    stream_s = time.perf_counter() - started

    batch_rate, stream_rate = n / batch_s, folded / stream_s
    print(f"batch engine, DuckDB, {len(ATTRIBUTES)} attributes")
    print(f"  events            {n:>12,}   entities {entities:,}")
    print(f"  compile           {compiled_s * 1000:>12,.0f} ms")
    print(f"  query             {batch_s:>12.2f} s    {batch_rate:>12,.0f} events/s")
    print("stream engine fold (same attributes, parsed events, one thread)")
    print(f"  events            {folded:>12,}")
    print(f"  fold              {stream_s:>12.2f} s    {stream_rate:>12,.0f} events/s")
    print(f"batch / stream      {batch_rate / stream_rate:>12.1f} x")


if __name__ == "__main__":
    main()
