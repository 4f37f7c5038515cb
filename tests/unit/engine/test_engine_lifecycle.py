"""The engine's state over time on the ecommerce seed: order, replays, sharing, TTL, windows.

Same workload and groups as ``test_engine_ecommerce`` (``workload.baseline``: the seed in file
order, processed at ``T0``). Expectations come from the CSV (``workload.seed_facts``) or from
comparing two runs of the real path.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable
from typing import Any

import pytest

from signals_stream.engine import fold_events, prune_row, read_group
from signals_stream.engine.row import decode_row
from signals_stream.errors import NotFoundError
from signals_stream.events.parse import Event
from tests.unit.engine.groups import (
    DRAFT,
    ECOM_USER,
    SESSION,
    SHOPPER,
    SHOPPER_V2,
    build_catalog,
)
from tests.unit.engine.workload import (
    READ_MS,
    T0_MS,
    Replay,
    SeedFact,
    baseline,
    ecommerce_lines,
    replay,
    route_lines,
    seed_facts,
)

_MIN = 60_000
_HOUR = 60 * _MIN
_DAY = 24 * _HOUR
_GROUPS = (("shopper", 1), ("shopper", 2), ("session", 1), ("ecom_user", 1))
_KEY_OF = {"shopper": "domain_userid", "session": "domain_sessionid", "ecom_user": "ecom_user_id"}


def _by(key: Callable[[SeedFact], str | None]) -> dict[str, list[SeedFact]]:
    out: dict[str, list[SeedFact]] = {}
    for fact in seed_facts():
        if entity := key(fact):
            out.setdefault(entity, []).append(fact)
    return out


USERS = _by(lambda f: f.domain_userid)
SESSIONS = _by(lambda f: f.domain_sessionid)


def _documented_default(aggregation: str, type_: str) -> Any:
    # signals_stream.aggregations.lookup's table (Signals leaves it undocumented).
    if aggregation in ("counter", "sum", "approx_count_distinct"):
        return 0.0 if type_ in ("double", "float") else 0
    return {"unique_list": [], "category_count": {}}.get(aggregation)


def _defaults(run: Replay, group: str, version: int = 1) -> dict[str, Any]:
    """What every attribute of the group reads as with no value: its default."""
    out = {}
    for attribute in run.catalog.group(group, version).definition.attributes or ():
        if "default_value" in attribute.model_fields_set:
            out[attribute.name] = attribute.default_value
        else:
            out[attribute.name] = _documented_default(attribute.aggregation, attribute.type)
    return out


def _same(a: Any, b: Any) -> bool:
    """Equal, floats within rounding (a sum's last bit may depend on the order of its terms)."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def _all_reads(run: Replay, now_ms: int = READ_MS) -> dict[tuple[str, int, str], dict[str, Any]]:
    return {
        (group, version, entity): run.read(group, entity, now_ms, version)
        for group, version in _GROUPS
        for entity in run.entities(_KEY_OF[group])
    }


# --- order independence ---------------------------------------------------------------------


@pytest.mark.parametrize("order", ["shuffled", "reversed"])
def test_arrival_order_does_not_change_any_result(order: str) -> None:
    lines = list(ecommerce_lines())
    if order == "shuffled":
        random.Random(20221222).shuffle(lines)
    else:
        lines.reverse()
    expected = baseline()
    other = replay(lines, expected.catalog)
    want, got = _all_reads(expected), _all_reads(other)
    assert want.keys() == got.keys()
    for where, values in want.items():
        assert _same(got[where], values), where
    for key_name in _KEY_OF.values():
        for entity in expected.entities(key_name):
            a, b = expected.row(key_name, entity), other.row(key_name, entity)
            assert a is not None and b is not None
            assert (a.events, a.first_ms, a.last_ms) == (b.events, b.first_ms, b.last_ms)


# --- exactly-once effect ----------------------------------------------------------------------


def test_redelivered_records_are_skipped_and_rows_stay_identical() -> None:
    run = baseline().copy()
    records = route_lines(ecommerce_lines(), run.catalog)
    before = dict(run.store)
    run.apply(records, T0_MS + 5 * _MIN)  # the whole log again, same offsets, later clock
    assert run.skipped == len(records)
    assert run.store == before


def test_crash_and_redelivery_from_an_older_offset_is_exactly_once() -> None:
    catalog = baseline().catalog
    records = route_lines(ecommerce_lines(), catalog)
    crashed = Replay(catalog)
    crashed.apply(records[:1200], T0_MS)
    # The committed offset lagged: everything from 700 on comes again after the restart.
    crashed.apply(records[700:], T0_MS)
    assert crashed.skipped == 500
    assert crashed.store == baseline().store


def test_without_the_offset_guard_a_replayed_record_would_count_twice() -> None:
    """Why ``already_applied`` matters: folding the same event again is not idempotent."""
    run = baseline()
    records = route_lines(ecommerce_lines(), run.catalog)
    partition, offset, entity_id, projections = next(
        (partition, offset, entity_id, [projection])
        for key_name, entity_id, partition, offset, projection in records
        if key_name == "domain_userid" and b'"ecommerce.tracking"' in projection
    )
    row = run.row("domain_userid", entity_id.decode())
    assert row is not None and row.already_applied(partition, offset)
    shopper = run.catalog.group("shopper", 1)
    before = read_group(row, shopper, READ_MS)
    events = [Event.from_projection(p) for p in projections]
    fold_events(row, run.catalog.programs["domain_userid"], events, T0_MS)
    after = read_group(row, shopper, READ_MS)
    assert after["tracking_v100_events"] == before["tracking_v100_events"] + 1
    # Order-based and set-like aggregations happen to absorb the duplicate.
    for name in ("first_page", "last_page", "pages_seen", "active_days", "distinct_products"):
        assert after[name] == before[name], name


# --- slot sharing -----------------------------------------------------------------------------


def test_identical_attributes_of_two_group_versions_share_one_slot() -> None:
    run = baseline()
    v1, v2 = run.catalog.group("shopper", 1), run.catalog.group("shopper", 2)
    slot1 = {a.name: a.slot for a in v1.attributes}
    slot2 = {a.name: a.slot for a in v2.attributes}
    assert slot2["revenue"] is slot1["revenue"]
    assert slot2["cart_adds"] is slot1["add_to_cart_count"]  # name and default are not hashed
    assert slot2["last_page"] is slot1["last_page"]
    assert slot2["transactions"].id not in {s.id for s in slot1.values()}
    program = run.catalog.programs["domain_userid"]
    assert len(program.slots) == len(v1.attributes) + 1
    assert len({s.id for s in program.slots}) == len(program.slots)
    # A shared slot lives as long as its longest-lived reader (v1: PT6H, v2: P1D).
    assert slot1["revenue"].retention_ms == _DAY
    assert slot1["cart_changes"].retention_ms == 6 * _HOUR
    assert slot1["list_views"].retention_ms == 10 * _MIN

    live = {s.id for s in program.slots}
    for user in USERS:
        row = run.row("domain_userid", user)
        assert row is not None and set(row.attrs) <= live
        a, b = run.read("shopper", user, version=1), run.read("shopper", user, version=2)
        assert b["revenue"] == a["revenue"]
        assert b["last_page"] == a["last_page"]
        # One state, two defaults: v1 reads the automatic 0, v2 its default_value -1.
        assert b["cart_adds"] == (a["add_to_cart_count"] or -1)
        transactions = sum(1 for f in USERS[user] if f.action == "transaction")
        assert b["transactions"] == transactions


# --- TTL ----------------------------------------------------------------------------------------


def test_attribute_ttl_expires_before_the_group_ttl() -> None:
    run = baseline()
    readers = [u for u, fs in USERS.items() if any(f.action == "list_view" for f in fs)]
    assert readers
    for user in readers:
        just_before = run.read("shopper", user, T0_MS + 10 * _MIN - 1, version=1)
        at_ttl = run.read("shopper", user, T0_MS + 10 * _MIN, version=1)
        list_views = sum(1 for f in USERS[user] if f.action == "list_view")
        assert just_before["list_views"] == list_views
        assert at_ttl["list_views"] == 0  # attribute ttl PT10M: the default
        assert at_ttl["pages_seen"] == just_before["pages_seen"] != []  # group ttl PT6H


@pytest.mark.parametrize(
    ("group", "ttl_ms", "witness"),
    [
        ("shopper", 6 * _HOUR, "pages_seen"),
        ("session", 30 * _MIN, "events"),
        ("ecom_user", _DAY, "events"),
    ],
    ids=["group-ttl", "short-group-ttl", "key-ttl"],
)
def test_values_read_as_defaults_after_the_ttl_and_prune_reclaims_them(
    group: str, ttl_ms: int, witness: str
) -> None:
    run = baseline()
    key_name = _KEY_OF[group]
    program = run.catalog.programs[key_name]
    defaults = _defaults(run, group)
    entities = run.entities(key_name)
    assert entities
    for entity in entities:
        assert run.read(group, entity, T0_MS + ttl_ms - 1, version=1)[witness] not in (0, [])
        assert run.read(group, entity, T0_MS + ttl_ms, version=1) == defaults
        row = run.row(key_name, entity)
        assert row is not None
        stored = set(row.attrs)
        assert prune_row(row, program, T0_MS + ttl_ms)
        # What is left is only what a longer-lived reader still needs (shopper v2: P1D).
        longer = {s.id for s in program.slots if s.retention_ms is None or s.retention_ms > ttl_ms}
        assert set(row.attrs) == stored & longer
        assert (group == "shopper") == bool(row.attrs)


def test_shared_slots_outlive_the_shorter_reader() -> None:
    run = baseline()
    later = T0_MS + 7 * _HOUR
    v2 = {a.slot.id for a in run.catalog.group("shopper", 2).attributes}
    program = run.catalog.programs["domain_userid"]
    for user, facts in USERS.items():
        assert run.read("shopper", user, later, version=1) == _defaults(run, "shopper")
        v2_values = run.read("shopper", user, later, version=2)
        assert v2_values == run.read("shopper", user, READ_MS, version=2)
        row = run.row("domain_userid", user)
        assert row is not None
        prune_row(row, program, later)
        assert set(row.attrs) <= v2
        assert read_group(row, run.catalog.group("shopper", 2), later) == v2_values
        assert (
            v2_values["last_page"]
            == max(
                ((f.time_ms, f.event_id, f.page_urlpath) for f in facts if f.page_urlpath),
                default=(0, "", "(none)"),
            )[2]
        )


def test_an_update_after_the_ttl_starts_from_an_empty_state() -> None:
    """Half the seed at T0, the rest 7 h later: the PT6H slots forget the first half, the slot
    shared with v2 (P1D) does not."""
    catalog = baseline().catalog
    lines = ecommerce_lines()
    half = len(lines) // 2
    first = route_lines(lines[:half], catalog)
    second = route_lines(lines[half:], catalog, first_offset=half)
    run = Replay(catalog)
    run.apply(first, T0_MS)
    run.apply(second, T0_MS + 7 * _HOUR)
    read_at = T0_MS + 7 * _HOUR + _MIN
    changes = ("add_to_cart", "remove_from_cart")
    straddling = 0
    for user, facts in USERS.items():
        early = [f for f in facts if f.index < half]
        late = [f for f in facts if f.index >= half]
        v1 = run.read("shopper", user, read_at, version=1)
        v2 = run.read("shopper", user, read_at, version=2)
        assert v1["cart_changes"] == sum(1 for f in late if f.action in changes)
        assert v1["events_30d"] == sum(1 for f in late if read_at - 30 * _DAY <= f.time_ms)
        adds = sum(1 for f in facts if f.action == "add_to_cart")
        assert v2["cart_adds"] == (adds or -1)
        straddling += any(f.action in changes for f in early) and any(
            f.action in changes for f in late
        )
    assert straddling >= 3  # the reset is visible, not vacuous


# --- rolling windows ----------------------------------------------------------------------------


def _recent_products(facts: list[SeedFact]) -> list[str]:
    seen: dict[str, int] = {}
    for f in facts:
        pid = f.products[0].get("id") if f.products else None
        if pid is not None:
            seen[pid] = max(seen.get(pid, f.time_ms), f.time_ms)
    return [p for p, _ in sorted(seen.items(), key=lambda item: (item[1], item[0]))]


def test_rolling_window_slides_with_the_read_clock_then_falls_off() -> None:
    """Each session read as each of its events arrives, and as each one leaves the window."""
    run = baseline()
    period = 10 * _MIN
    # Tiles make both edges exact to one bucket (15 s for PT10M, windows.py): the oldest
    # bucket may reach before ``now - period`` and the newest past ``now``. Reads with an
    # event less than 20 s outside either edge are skipped: either answer would be right.
    band = 20_000
    checked = partial = 0
    for session, facts in SESSIONS.items():
        times = sorted({f.time_ms for f in facts})
        for now in {*times, *(t + period + band + 5_000 for t in times)}:
            if any(
                now - period - band <= f.time_ms < now - period or now < f.time_ms <= now + band
                for f in facts
            ):
                continue
            inside = [f for f in facts if now - period <= f.time_ms <= now]
            values = run.read("session", session, now)
            assert values["events_10m"] == len(inside), (session[:8], now)
            assert values["products_10m"] == _recent_products(inside), (session[:8], now)
            assert values["events"] == len(facts)  # lifetime: not windowed
            checked += 1
            partial += 0 < len(inside) < len(facts)
        gone = run.read("session", session, times[-1] + period + band + 5_000)
        assert (gone["events_10m"], gone["products_10m"]) == (0, [])
    assert checked >= len(SESSIONS)
    assert partial >= 20


# --- publishing -----------------------------------------------------------------------------------


def test_an_unpublished_group_is_not_computed() -> None:
    run = baseline()
    assert "network_userid" not in run.catalog.programs
    assert "network_userid" not in {k.name for k in run.catalog.routing_plan().keys}
    assert not run.entities("network_userid")
    with pytest.raises(NotFoundError):
        run.catalog.group("draft")
    assert DRAFT["is_published"] is False


def test_unpublishing_a_version_prunes_its_slots_and_keeps_the_shared_ones() -> None:
    run = baseline()
    v1_off = {**copy.deepcopy(SHOPPER), "is_published": False}
    catalog = build_catalog(v1_off, SHOPPER_V2, SESSION, ECOM_USER)
    with pytest.raises(NotFoundError):
        catalog.group("shopper", 1)
    assert catalog.group("shopper").definition.version == 2
    program = catalog.programs["domain_userid"]
    v2 = catalog.group("shopper", 2)
    assert {s.id for s in program.slots} == {a.slot.id for a in v2.attributes}
    for user in USERS:
        raw = run.store[b"domain_userid\x1f" + user.encode()]
        row = decode_row(raw)
        assert prune_row(row, program, READ_MS)
        assert set(row.attrs) <= {s.id for s in program.slots}
        assert read_group(row, v2, READ_MS) == run.read("shopper", user, version=2)
    # Replayed under the new catalog, v1's own slots are never created.
    fresh = replay(ecommerce_lines(), catalog)
    for user in USERS:
        row = fresh.row("domain_userid", user)
        assert row is not None and set(row.attrs) <= {s.id for s in program.slots}
        assert fresh.read("shopper", user) == run.read("shopper", user, version=2)


def test_unpublishing_every_group_of_a_key_stops_routing_and_empties_its_rows() -> None:
    run = baseline()
    catalog = build_catalog(SHOPPER, SHOPPER_V2, ECOM_USER)
    assert "domain_sessionid" not in catalog.programs
    assert "domain_sessionid" not in {k.name for k in catalog.routing_plan().keys}
    for session in SESSIONS:
        row = run.row("domain_sessionid", session)
        assert row is not None and row.attrs
        assert prune_row(row, catalog.programs.get("domain_sessionid"), READ_MS)
        assert row.attrs == {}
