"""The warehouse part of a backfill for every aggregation and window (``batch/backfill_sql``,
``batch/backfill_states``, ``engine/warehouse_states``).

The batch engine's reference group (48 attributes: every aggregation, property kind and
criteria operator, periods, TTLs) over the 834 ecommerce events in DuckDB and a test-started
PostgreSQL. A cut splits the events by collector time: the warehouse gives the states of the
events below it, the stream's replay of the same events (``fold_on_event_time``) gives its
own, and the two must be equal slot by slot (HyperLogLog registers, unique-list recency
order, frequency counts, period buckets and a TTL'd slot's update time included). Then the
warehouse states merged into a row, followed by the events at or past the cut folded on
event time (the log's road), read the same values as the whole history folded at once. A
subset is also worked out from the CSV rows in plain Python.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest

from signals_stream.aggregations import hll
from signals_stream.batch.backfill_sql import backfill_queries
from signals_stream.batch.backfill_states import EntityStates, StatesBuilder
from signals_stream.batch.compile import DEFAULT_EVENTS_TABLE, EventsTable
from signals_stream.definitions import AttributeGroup
from signals_stream.engine import Catalog, read_group
from signals_stream.engine.catalog import Backfill
from signals_stream.engine.fold import fold_events
from signals_stream.engine.history import fold_on_event_time, in_time_order
from signals_stream.engine.row import EntityRow
from signals_stream.engine.warehouse_states import merge_warehouse_states
from signals_stream.events.parse import parse_tsv
from tests.batch_events import column_types, load_duckdb, load_postgres, typed_csv
from tests.dbt_seeds import ECOMMERCE_SEED, seed_rows, seed_tsv
from tests.postgres_server import postgres_server
from tests.unit.batch.ecommerce_group import stream_group

PRODUCT = {"type": "entity", "vendor": "com.snowplowanalytics.snowplow.ecommerce",
           "name": "product", "major_version": 1}  # fmt: skip
PAGE_URL = {"type": "atomic", "name": "page_url"}
# The reference group's TTL'd attributes share their states with attributes without one (the
# slot then never restarts); these two have slots of their own, restarted after a gap.
OWN_TTLS = [
    {"name": "session_pages", "type": "int64", "aggregation": "counter", "ttl": "PT30M",
     "criteria": {"all": [{"property": PAGE_URL, "operator": "like", "value": "%/%"}]}},
    {"name": "session_products", "type": "string_list", "aggregation": "unique_list",
     "ttl": "PT1H", "property": {**PRODUCT, "path": "id"}},
]  # fmt: skip
GROUP = AttributeGroup.parse(
    {**stream_group().to_wire(), "attributes": [
        *(a.to_wire() for a in stream_group().attributes or ()), *OWN_TTLS,
    ]}
)  # fmt: skip
EVENTS = [parse_tsv(line) for line in seed_tsv(ECOMMERCE_SEED)]
ROWS = seed_rows(ECOMMERCE_SEED)
NOW_MS = max(e.event_time_ms for e in EVENTS) + 15 * 60_000
SINCE_MS = min(e.collector_tstamp_ms for e in EVENTS) - 3_600_000


def _cut_in_a_gap() -> int:
    """The median collector time of an entity's event that comes 30 minutes or more after
    its previous one (by collector and event time): a cut there restarts the TTL'd
    ``session_pages`` at the seam."""
    by_user: dict[str, list[Any]] = defaultdict(list)
    for event in sorted(EVENTS, key=lambda e: e.collector_tstamp_ms):
        if event.atomic("domain_userid"):
            by_user[event.atomic("domain_userid")].append(event)
    after_gaps = sorted(
        later.collector_tstamp_ms
        for events in by_user.values()
        for earlier, later in zip(events, events[1:], strict=False)
        if later.collector_tstamp_ms - earlier.collector_tstamp_ms >= 30 * 60_000
        and later.event_time_ms - max(e.event_time_ms for e in events[: events.index(later)])
        >= 30 * 60_000
    )
    return after_gaps[len(after_gaps) // 2]


_COLLECTED = sorted(e.collector_tstamp_ms for e in EVENTS)
CUTS_MS = [_COLLECTED[len(EVENTS) * 3 // 5], _COLLECTED[len(EVENTS) // 5], _cut_in_a_gap()]
KEYED_OR_WINDOWED = {"categories", "top_action", "rare_action", "action_counts",
                     "distinct_products", "active_days", "active_weeks", "busiest_hour",
                     "months", "recent_events", "recent_categories", "recent_price_sum",
                     "session_events", "weekly_actions", "week_last_url"}  # fmt: skip


def _catalog() -> tuple[Catalog, dict[str, str]]:
    catalog = Catalog.build([GROUP])
    published = catalog.group(GROUP.name, GROUP.version)
    return catalog, {a.name: a.slot.id for a in published.attributes}


def _by_entity(below_cut: bool | None, cut_ms: int) -> dict[str, list[Any]]:
    key = Catalog.build([GROUP]).programs["domain_userid"].key
    out: dict[str, list[Any]] = defaultdict(list)
    for event in EVENTS:
        entity = key.key_value(event)
        if not entity:
            continue
        if below_cut is None or (event.collector_tstamp_ms < cut_ms) == below_cut:
            out[entity].append(event)
    return out


States = tuple[int, dict[str, EntityStates]]  # the cut, each entity's states below it


def _warehouse_states(run: Any, dialect: str, types: dict[str, str], cut_ms: int) -> States:
    table = EventsTable.of(DEFAULT_EVENTS_TABLE, types, dialect)  # type: ignore[arg-type]
    builder = StatesBuilder(GROUP)
    published = Catalog.build([GROUP]).group(GROUP.name, GROUP.version)
    retention = {a.name: a.slot.retention_ms for a in published.attributes}
    queries = backfill_queries(
        GROUP, table, dialect=dialect, since_ms=SINCE_MS, cut_ms=cut_ms, now_ms=NOW_MS,  # type: ignore[arg-type]
        retention=retention,
    )  # fmt: skip
    assert {q.shape for q in queries} == {"entity", "buckets", "values"}
    for query in queries:
        builder.add(query, run(query.sql(dialect)))
    return cut_ms, builder.states()


@pytest.fixture(scope="module")
def typed_events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return typed_csv(tmp_path_factory.mktemp("whbf2"))


@pytest.fixture(scope="module")
def duckdb_events(typed_events: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    load_duckdb(con, typed_events)
    return con


@pytest.fixture(scope="module", params=CUTS_MS, ids=["cut60", "cut20", "cut_in_a_gap"])
def duckdb_states(duckdb_events: duckdb.DuckDBPyConnection, request: Any) -> States:
    con = duckdb_events
    run = lambda sql: con.execute(sql).fetchall()  # noqa: E731
    return _warehouse_states(run, "duckdb", column_types(con), request.param)


@pytest.fixture(scope="module")
def postgres_states(typed_events: Path) -> Iterator[States]:
    con = duckdb.connect()
    load_duckdb(con, typed_events)
    types = column_types(con)
    with postgres_server() as url:
        load_postgres(url, typed_events, types)
        with psycopg.connect(url) as conn:
            conn.execute("SET TIME ZONE 'UTC'")
            pg_types = dict(
                conn.execute(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = 'atomic' AND table_name = 'events'"
                ).fetchall()
            )
            yield _warehouse_states(
                lambda sql: conn.execute(sql.encode()).fetchall(), "postgres", pg_types, CUTS_MS[0]
            )


def _close(a: Any, b: Any) -> bool:
    """Equal, floats to 1e-9 (a sum's order of additions differs between SQL and Python)."""
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, int | float) and isinstance(b, int | float) and math.isclose(a, b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    return bool(a == b)


def _assert_states_equal_the_streams(states: States) -> None:
    """Slot by slot, the warehouse's states of the events below the cut equal the stream's
    replay of them; a TTL'd slot's update time is the latest event time it took."""
    catalog, slots = _catalog()
    retention = {s.id: s.retention_ms for s in catalog.programs["domain_userid"].slots}
    cut_ms, found = states
    below = _by_entity(True, cut_ms)
    assert set(found) == set(below)
    mismatches = []
    for entity, events in below.items():
        row = fold_on_event_time(catalog, "domain_userid", entity, events).row
        for name, slot in slots.items():
            want = row.attrs.get(slot)
            got = found[entity].get(name)
            if want is None or got is None:
                if want != got and not (got is not None and got[0] in ([], {})):
                    mismatches.append((entity, name, got, want))
                continue
            if name == "distinct_products" or name == "active_weeks":
                same = hll.registers(got[0]) == hll.registers(want[0])
            else:
                same = _close(got[0], want[0])
            if not same or (retention[slot] is not None and got[1] != want[1]):
                mismatches.append((entity, name, got, want))
    assert sorted({name for _, name, _, _ in mismatches}) == [], mismatches[:3]
    assert mismatches == []


def _assert_merged_then_log_equals_everything(states: States) -> int:
    """Warehouse states (below the cut) merged, then the log's events (at or past it) folded
    on event time, read what the whole history folded at once reads, for every entity.
    Returns how many entities' own-TTL slots restarted at the seam (the merged state
    expired before the log's first event)."""
    catalog, slots = _catalog()
    program = catalog.programs["domain_userid"]
    backfill = Backfill("bf1", GROUP.name, GROUP.version, SINCE_MS, 0, program)
    published = catalog.group(GROUP.name, GROUP.version)
    cut_ms, found = states
    after = _by_entity(False, cut_ms)
    restarted = 0
    for entity, events in _by_entity(None, cut_ms).items():
        whole = fold_on_event_time(catalog, "domain_userid", entity, events).row
        row = EntityRow()
        mine = found.get(entity, {})
        merge_warehouse_states(
            row, backfill,
            {slots[n]: state for n, (state, _) in mine.items()},
            NOW_MS,
            {slots[n]: at for n, (_, at) in mine.items() if at is not None},
        )  # fmt: skip
        later = in_time_order(after.get(entity, []))
        pages = [e for e in later if "/" in (e.atomic("page_url") or "")]
        seam = mine.get("session_pages")
        if pages and seam and seam[1] is not None:
            restarted += pages[0].event_time_ms - seam[1] >= 30 * 60_000
        for event in later:
            fold_events(row, program, [event], NOW_MS, on_event_time=True)
        got, want = read_group(row, published, NOW_MS), read_group(whole, published, NOW_MS)
        assert got == want, {n: (got[n], want[n]) for n in want if got[n] != want[n]}
    return restarted


def test_duckdb_states_equal_the_streams_slot_by_slot(duckdb_states: States) -> None:
    _assert_states_equal_the_streams(duckdb_states)


RESTARTS: list[int] = []


def test_duckdb_states_then_the_log_equal_the_whole_history(duckdb_states: States) -> None:
    RESTARTS.append(_assert_merged_then_log_equals_everything(duckdb_states))
    if len(RESTARTS) == len(CUTS_MS):  # some cut falls in a gap of a TTL: the merge rule runs
        assert sum(RESTARTS) > 0, RESTARTS


def test_postgres_states_equal_the_streams_and_merge_to_the_whole_history(
    postgres_states: States,
) -> None:
    _assert_states_equal_the_streams(postgres_states)
    _assert_merged_then_log_equals_everything(postgres_states)


def _ms(text: str) -> int:
    from tests.integration.history_data import event_ms

    return event_ms(text)


def test_states_equal_a_plain_computation_from_the_csv(duckdb_states: States) -> None:
    """For the keyed and windowed kinds, from the CSV rows below the cut: the categories'
    last sightings, the action counts, the distinct product ids (as a set), the 7-day
    counter's buckets (4 h wide), and the TTL'd slots restarted after each gap of a TTL."""
    cut_ms, found = duckdb_states
    action = "unstruct_event_com_snowplowanalytics_snowplow_ecommerce_snowplow_ecommerce_action_1"
    product = "contexts_com_snowplowanalytics_snowplow_ecommerce_product_1"
    rows: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in ROWS:
        if row["domain_userid"] and _ms(row["collector_tstamp"]) < cut_ms:
            rows[row["domain_userid"]].append(row)
    checked = 0
    for user, events in rows.items():
        got = found[user]
        seen: dict[str, int] = {}
        counts: dict[str, int] = defaultdict(int)
        ids: set[str] = set()
        products: list[tuple[int, str]] = []
        buckets: dict[int, int] = defaultdict(int)
        times = sorted(_ms(r["derived_tstamp"] or r["collector_tstamp"]) for r in events)
        for r in events:
            t = _ms(r["derived_tstamp"] or r["collector_tstamp"])
            buckets[t - t % (4 * 3_600_000)] += 1
            column = next((c for c in r if c.startswith(action)), None)
            kind = json.loads(r[column]).get("type") if column and r[column] else None
            if kind is not None:
                counts[kind] += 1
            for column in (c for c in r if c.startswith(product) and r[c]):
                first = (json.loads(r[column]) or [{}])[0]  # no index: the first entity
                if first.get("category") is not None:
                    seen[first["category"]] = max(seen.get(first["category"], 0), t)
                if first.get("id") is not None:
                    ids.add(first["id"])
                    products.append((t, first["id"]))
        newest = max(buckets)
        week = {b: n for b, n in buckets.items() if b > newest - 7 * 86_400_000 - 4 * 3_600_000}
        pages = sorted(_ms(r["derived_tstamp"]) for r in events if "/" in r["page_url"])
        session = 0
        for i, t in enumerate(pages):  # restarted after a gap of 30 minutes or more
            session = 1 if i == 0 or t - pages[i - 1] >= 30 * 60_000 else session + 1
        taken = sorted(products)
        hour: dict[str, int] = {}
        for i, (t, pid) in enumerate(taken):
            if i > 0 and t - taken[i - 1][0] >= 3_600_000:
                hour = {}
            hour[pid] = t
        if seen:
            assert got["categories"][0] == dict(sorted(seen.items(), key=lambda i: (i[1], i[0])))
        if counts:
            assert got["action_counts"][0] == counts
        if ids:
            assert round(hll.estimate(got["distinct_products"][0])) == len(ids)
        assert got["recent_events"][0] == [[b, n] for b, n in sorted(week.items())]
        # shared with ``events`` (no TTL): never restarted, its TTL counts from the last event
        assert got["session_events"] == (len(events), times[-1])
        if pages:
            assert got["session_pages"] == (session, pages[-1])
        if hour:
            want = dict(sorted(hour.items(), key=lambda i: (i[1], i[0])))
            assert got["session_products"] == (want, taken[-1][0])
        checked += 1
    assert checked > 5
