from __future__ import annotations

import copy
import itertools
import math
import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signals_stream.aggregations import (
    AGGREGATIONS,
    FREQUENCY_CAP,
    REDUCERS,
    UNIQUE_LIST_CAP,
    Reducer,
    decode_value,
    default_for,
    encode_value,
    get_reducer,
    iso_utc,
    render_value,
)
from signals_stream.errors import DefinitionError

T0 = 1_700_000_000_000
NOW = T0 + 3_600_000

Event = tuple[Any, int, str]


def fold(reducer: Reducer[Any], events: list[Event]) -> Any:
    state = reducer.initial()
    for value, t, eid in events:
        state = reducer.add(state, value, t, eid)
    return state


def value_of(name: str, events: list[Event], now_ms: int = NOW, unit: str | None = "s") -> Any:
    reducer = get_reducer(name)
    return reducer.result(fold(reducer, events), now_ms, unit)


def ev(*values: Any, step_ms: int = 1_000) -> list[Event]:
    """Events with increasing event times and ids."""
    return [(v, T0 + i * step_ms, f"e{i:03d}") for i, v in enumerate(values)]


# --- the spec's enumeration -------------------------------------------------------------


def test_every_signals_aggregation_has_a_reducer() -> None:
    assert AGGREGATIONS == (
        "counter",
        "sum",
        "min",
        "max",
        "mean",
        "first",
        "last",
        "unique_list",
        "most_frequent",
        "least_frequent",
        "category_count",
        "approx_count_distinct",
        "time_since_last",
        "time_since_first",
    )
    assert all(REDUCERS[name].name == name for name in AGGREGATIONS)


def test_state_suffixes_are_distinct_and_versioned() -> None:
    suffixes = [r.state_suffix for r in REDUCERS.values()]
    assert len(set(suffixes)) == len(suffixes)
    assert all(s == f"{r.name}.v1" for s, r in zip(suffixes, REDUCERS.values(), strict=True))


def test_unknown_aggregation_is_a_definition_error() -> None:
    with pytest.raises(DefinitionError):
        get_reducer("median")
    with pytest.raises(DefinitionError):
        default_for("median", "double")


# --- results, table-driven ----------------------------------------------------------------

RESULTS = [
    ("counter", ev("a", None, 3), 3),
    ("counter", [], None),
    ("sum", ev(1, 2, 3.5), 6.5),
    ("sum", ev(2, -2), 0),
    ("sum", ev(None, None), None),
    ("min", ev(3, -1.5, 7), -1.5),
    ("max", ev(3, -1.5, 7), 7),
    ("mean", ev(1, 2, 4, None), 7 / 3),
    ("mean", [], None),
    ("first", ev("a", "b", "c"), "a"),
    ("last", ev("a", "b", "c"), "c"),
    ("first", ev(None, "b", "c"), "b"),
    ("last", ev("a", "b", None), "b"),
    ("last", ev(True, False), False),
    ("last", ev({"k": [1]}, [1, 2]), [1, 2]),
    ("most_frequent", ev("a", "b", "b", "c"), "b"),
    ("most_frequent", ev(13, 13, 9), 13),
    ("least_frequent", ev("a", "b", "b", "a", "c"), "c"),
    ("category_count", ev("x", "y", "x", None), {"x": 2, "y": 1}),
    ("category_count", ev(1, 1, True, 2.5), {"1": 2, "true": 1, "2.5": 1}),
    ("unique_list", ev("/home", "/products", "/home"), ["/products", "/home"]),
    ("unique_list", ev(3, "3", 3.0, True), [3, "3", 3.0, True]),
    ("unique_list", [], None),
    ("approx_count_distinct", ev("a", "b", "a", 1, "1", None), 4),
    ("approx_count_distinct", [], None),
    ("time_since_first", ev(None, None, step_ms=60_000), 3600.0),
    ("time_since_last", ev(None, None, step_ms=60_000), 3540.0),
    ("time_since_last", [], None),
]


@pytest.mark.parametrize(("name", "events", "expected"), RESULTS)
def test_result(name: str, events: list[Event], expected: Any) -> None:
    got = value_of(name, events)
    if isinstance(expected, float):
        assert got == pytest.approx(expected)
    else:
        assert got == expected
    assert type(got) is type(expected)


@pytest.mark.parametrize(
    ("unit", "expected"), [("s", 5400.0), ("min", 90.0), ("h", 1.5), ("d", 1.5 / 24)]
)
def test_time_since_units(unit: str, expected: float) -> None:
    events = [(None, NOW - 5_400_000, "e1")]
    assert value_of("time_since_last", events, unit=unit) == pytest.approx(expected)


def test_time_since_clamps_at_zero_and_rejects_unknown_units() -> None:
    future = [(None, NOW + 10_000, "e1")]
    assert value_of("time_since_last", future) == 0.0
    with pytest.raises(ValueError, match="time_unit"):
        value_of("time_since_first", future, unit="weeks")
    with pytest.raises(ValueError, match="time_unit"):
        value_of("time_since_first", future, unit=None)


def test_time_since_uses_event_time_not_the_value() -> None:
    events = [("2020-01-01T00:00:00Z", NOW - 2_000, "e1"), (12345, NOW - 9_000, "e2")]
    assert value_of("time_since_last", events) == 2.0
    assert value_of("time_since_first", events) == 9.0


# --- nulls and non-numbers ------------------------------------------------------------------

SKIPS_NONE = [
    n for n in AGGREGATIONS if n not in ("counter", "time_since_first", "time_since_last")
]


@pytest.mark.parametrize("name", SKIPS_NONE)
def test_none_is_skipped(name: str) -> None:
    reducer = get_reducer(name)
    assert reducer.skips_none
    state = fold(reducer, ev("x", 2))
    before = copy.deepcopy(state)
    assert reducer.add(state, None, T0 + 99_000, "z") == before
    assert reducer.result(reducer.add(reducer.initial(), None, T0, "z"), NOW, "s") is None


def test_counter_counts_events_whatever_the_value() -> None:
    assert not get_reducer("counter").skips_none
    assert value_of("counter", ev(None, None, 0, "", False)) == 5


@pytest.mark.parametrize("name", ["sum", "min", "max", "mean"])
@pytest.mark.parametrize("junk", [True, False, "12", math.nan, math.inf, -math.inf, [1], {"a": 1}])
def test_numeric_reducers_skip_non_numbers(name: str, junk: Any) -> None:
    assert value_of(name, ev(4, junk, 4)) == (8 if name == "sum" else 4)


# --- timestamps ------------------------------------------------------------------------------

DT = datetime(2024, 3, 15, 9, 5, 29, 634_000, tzinfo=UTC)


def test_iso_utc_is_fixed_width_utc() -> None:
    assert iso_utc(DT) == "2024-03-15T09:05:29.634000Z"
    assert iso_utc(DT.astimezone(timezone(timedelta(hours=-5)))) == "2024-03-15T09:05:29.634000Z"
    assert iso_utc(datetime(1, 1, 1)) == "0001-01-01T00:00:00.000000Z"


@pytest.mark.parametrize(
    ("name", "expected"),
    [("min", "2024-03-15T09:05:29.634000Z"), ("max", "2024-03-16T00:00:00.000000Z")],
)
def test_min_max_take_timestamps(name: str, expected: str) -> None:
    # A datetime (atomic *_tstamp) or ISO text (a schema date-time field), in any offset.
    values = [DT + timedelta(hours=1), "2024-03-16T01:00:00+01:00", DT, "not a time", None]
    assert value_of(name, ev(*values)) == expected


@pytest.mark.parametrize("name", ["min", "max"])
def test_numbers_take_precedence_over_timestamps_in_any_order(name: str) -> None:
    values = [DT, 5, "2024-01-01T00:00:00Z", 3]
    results = {value_of(name, ev(*p)) for p in itertools.permutations(values)}
    assert results == {3 if name == "min" else 5}


@pytest.mark.parametrize("name", ["first", "last", "unique_list", "most_frequent"])
def test_datetime_values_are_stored_as_iso_text(name: str) -> None:
    reducer = get_reducer(name)
    state = fold(reducer, ev(DT))
    assert orjson.loads(orjson.dumps(state)) == state
    result = reducer.result(state, NOW)
    assert result in ("2024-03-15T09:05:29.634000Z", ["2024-03-15T09:05:29.634000Z"])


# --- first / last follow event time -------------------------------------------------------


@pytest.mark.parametrize("name", ["first", "last", "time_since_first", "time_since_last"])
def test_first_last_ignore_arrival_order(name: str) -> None:
    events = [("b", T0 + 2_000, "e2"), ("c", T0 + 3_000, "e3"), ("a", T0 + 1_000, "e1")]
    results = {value_of(name, list(p)) for p in itertools.permutations(events)}
    assert len(results) == 1


def test_late_earlier_event_becomes_first() -> None:
    reducer = get_reducer("first")
    state = fold(reducer, [("second", T0 + 5_000, "e2")])
    state = reducer.add(state, "first", T0 + 1_000, "e1")  # arrives later, happened earlier
    assert reducer.result(state, NOW) == "first"
    assert value_of("last", [("new", T0 + 5_000, "e2"), ("late", T0 + 1_000, "e1")]) == "new"


def test_equal_event_times_break_ties_by_event_id() -> None:
    tie = [("from-b", T0, "b"), ("from-a", T0, "a"), ("from-c", T0, "c")]
    for order in itertools.permutations(tie):
        assert value_of("first", list(order)) == "from-a"
        assert value_of("last", list(order)) == "from-c"


def test_replayed_event_does_not_change_first_or_last() -> None:
    events = ev("a", "b")
    for name in ("first", "last"):
        assert value_of(name, events + events) == value_of(name, events)


# --- frequency: caps, eviction, ties ------------------------------------------------------


@pytest.mark.parametrize("name", ["most_frequent", "least_frequent", "category_count"])
def test_frequency_tracks_at_most_100_values(name: str) -> None:
    reducer = get_reducer(name)
    state = fold(reducer, ev(*(f"v{i}" for i in range(250))))
    assert len(state) == FREQUENCY_CAP


def test_frequency_eviction_keeps_repeated_values() -> None:
    reducer = get_reducer("most_frequent")
    hot = ["hot"] * 5
    state = fold(reducer, ev(*hot, *(f"once{i}" for i in range(500)), "hot"))
    assert state["hot"] == 6
    assert reducer.result(state, NOW) == "hot"
    # The newest one-off value is tracked: a lifetime state keeps accepting new values.
    assert "once499" in state
    assert "once0" not in state


def test_frequency_evicts_the_earliest_inserted_of_the_lowest_count() -> None:
    reducer = get_reducer("category_count")
    values = [f"v{i}" for i in range(FREQUENCY_CAP)]
    state = fold(reducer, ev(*values, *values[:50]))  # v0..v49 count 2, v50..v99 count 1
    state = reducer.add(state, "new", NOW, "x")
    assert "v50" not in state and "v51" in state and state["new"] == 1


@pytest.mark.parametrize(("name", "expected"), [("most_frequent", "a"), ("least_frequent", "a")])
def test_frequency_ties_are_deterministic(name: str, expected: str) -> None:
    for order in itertools.permutations(["c", "a", "b"]):
        assert value_of(name, ev(*order)) == expected


def test_category_count_keeps_the_top_100_on_merge() -> None:
    reducer = get_reducer("category_count")
    a = fold(reducer, ev(*(f"a{i}" for i in range(80)), *["a0"] * 3))
    b = fold(reducer, ev(*(f"b{i}" for i in range(80)), *["b0"] * 2))
    merged = reducer.merge(a, b)
    assert len(merged) == FREQUENCY_CAP
    assert merged["a0"] == 4 and merged["b0"] == 3
    result = reducer.result(merged, NOW)
    assert list(result)[:2] == ["a0", "b0"]


# --- unique_list: LRU by event time --------------------------------------------------------


def test_unique_list_is_lru_capped_at_100() -> None:
    reducer = get_reducer("unique_list")
    state = fold(reducer, ev(*range(150)))
    assert reducer.result(state, NOW) == list(range(50, 150))
    state = reducer.add(state, 60, NOW, "again")  # a repeat moves to the newest end
    state = reducer.add(state, "new", NOW + 1, "new")
    result = reducer.result(state, NOW)
    assert len(result) == UNIQUE_LIST_CAP
    assert result[0] == 51 and result[-2:] == [60, "new"]


def test_unique_list_recency_is_event_time() -> None:
    reducer = get_reducer("unique_list")
    state = fold(reducer, [("/a", T0 + 1_000, "e1"), ("/b", T0 + 2_000, "e2")])
    state = reducer.add(state, "/a", T0 + 500, "late")  # an older sighting of /a
    assert reducer.result(state, NOW) == ["/a", "/b"]


def test_unique_list_drops_a_late_new_value_older_than_everything_when_full() -> None:
    reducer = get_reducer("unique_list")
    state = fold(reducer, ev(*range(UNIQUE_LIST_CAP)))
    before = dict(state)
    assert reducer.add(state, "ancient", T0 - 1, "x") == before


def test_unique_list_merge_equals_replay_past_the_cap() -> None:
    reducer = get_reducer("unique_list")
    rng = random.Random(7)
    for _ in range(20):
        events = [(rng.randrange(180), T0 + rng.randrange(400) * 10, f"e{i}") for i in range(500)]
        cut = rng.randrange(len(events))
        shuffled = events[:]
        rng.shuffle(shuffled)
        whole = fold(reducer, shuffled)
        merged = reducer.merge(fold(reducer, events[:cut]), fold(reducer, events[cut:]))
        assert merged == whole
        assert reducer.result(merged, NOW) == reducer.result(fold(reducer, events), NOW)


@settings(max_examples=60, deadline=None)
@given(
    raw=st.lists(st.tuples(st.integers(0, 130), st.integers(0, 50)), max_size=300),
)
def test_unique_list_state_stays_in_recency_order(raw: list[tuple[int, int]]) -> None:
    # The invariant that makes eviction O(1): dict order is ascending (last_seen_ms, key).
    reducer = get_reducer("unique_list")
    state = reducer.initial()
    for i, (v, t) in enumerate(raw):
        state = reducer.add(state, f"/p/{v}", T0 + t, f"e{i}")
        assert list(state.items()) == sorted(state.items(), key=lambda kv: (kv[1], kv[0]))
    latest: dict[str, int] = {}
    for v, t in raw:
        latest[f"/p/{v}"] = max(latest.get(f"/p/{v}", 0), T0 + t)
    assert state == dict(sorted(latest.items(), key=lambda kv: (kv[1], kv[0]))[-UNIQUE_LIST_CAP:])


# --- state is JSON-native --------------------------------------------------------------------

MIXED = ev("a", 2, 2.5, None, True, "a", 7, "\x7fodd", [1, "x"], {"k": 1}, step_ms=7_000)


@pytest.mark.parametrize("name", AGGREGATIONS)
def test_state_survives_json_round_trip(name: str) -> None:
    reducer = get_reducer(name)
    state = fold(reducer, MIXED[:6])
    restored = orjson.loads(orjson.dumps(state))
    assert restored == state
    for value, t, eid in MIXED[6:]:
        state = reducer.add(state, value, t, eid)
        restored = reducer.add(restored, value, t, eid)
    assert reducer.result(restored, NOW, "s") == reducer.result(state, NOW, "s")


@pytest.mark.parametrize(
    "value", ["plain", "", "\x7f", "\x7fi12", 0, -12, 2**70, 1.5, -0.0, True, False, [1, {"b": 2}]]
)
def test_value_keys_round_trip_and_keep_types(value: Any) -> None:
    key = encode_value(value)
    assert isinstance(key, str)
    back = decode_value(key)
    assert back == value and type(back) is type(value)


def test_value_keys_distinguish_types() -> None:
    keys = {encode_value(v) for v in (1, 1.0, True, "1", [1])}
    assert len(keys) == 5
    assert [render_value(encode_value(v)) for v in (1, 1.0, True, "1")] == ["1", "1.0", "true", "1"]


# --- merge == add-all, for every reducer -----------------------------------------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-50, 50),
    st.floats(-1e3, 1e3, allow_nan=False).map(lambda f: round(f, 2)),
    st.sampled_from(
        ["a", "b", "/home", "\x7fx", "", "2024-03-15T09:05:29Z", "2024-03-15 10:00+01:00"]
    ),
    st.just(datetime(2024, 3, 15, 9, 5, 29, 500_000, tzinfo=UTC)),
)


def _as_events(raw: list[tuple[Any, int, str]]) -> list[Event]:
    # Few distinct times and ids, so ties happen; (time, id) stays unique as for real events.
    return [(v, T0 + t * 1_000, f"{eid}{i}") for i, (v, t, eid) in enumerate(raw)]


event_lists = st.lists(
    st.tuples(_scalars, st.integers(0, 20), st.sampled_from("abc")), max_size=40
).map(_as_events)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b and type(a) is type(b)


def _merge_tree(reducer: Reducer[Any], parts: list[Any], rng: random.Random) -> Any:
    while len(parts) > 1:
        i = rng.randrange(len(parts) - 1)
        parts[i : i + 2] = [reducer.merge(parts[i], parts[i + 1])]
    return parts[0]


@pytest.mark.parametrize("name", AGGREGATIONS)
@settings(max_examples=50, deadline=None)
@given(events=event_lists, cuts=st.lists(st.integers(0, 40), max_size=4), seed=st.integers())
def test_merge_of_any_split_equals_adding_everything(
    name: str, events: list[Event], cuts: list[int], seed: int
) -> None:
    reducer = get_reducer(name)
    rng = random.Random(seed)
    bounds = [0, *sorted(c % (len(events) + 1) for c in cuts), len(events)]
    chunks = [events[lo:hi] for lo, hi in itertools.pairwise(bounds)]
    rng.shuffle(chunks)  # merge is commutative as well as associative
    partials = [fold(reducer, c) for c in chunks]
    snapshots = copy.deepcopy(partials)
    whole = fold(reducer, events)
    # Any merge tree (merge may mutate its first argument, so the tree gets copies).
    tree = _merge_tree(reducer, copy.deepcopy(partials), rng)
    # The read path: a fresh accumulator, every partial merged in as the second argument.
    acc = reducer.initial()
    for partial in partials:
        acc = reducer.merge(acc, partial)
    # merge_all (the one-pass form rolling reads use) equals the fold.
    for merged in (tree, acc, reducer.merge_all(partials)):
        assert _same(reducer.result(merged, NOW, "min"), reducer.result(whole, NOW, "min"))
        if name not in ("sum", "mean"):  # float sums differ in the last bits by grouping
            assert merged == whole
    # merge(a, b) never mutates b nor shares it: later adds to the result leave b intact.
    for value, t, eid in ev("zz", 99, "zz", 1.5):
        acc = reducer.add(acc, value, t, eid)
    assert partials == snapshots


@pytest.mark.parametrize("name", AGGREGATIONS)
def test_initial_returns_a_fresh_state(name: str) -> None:
    reducer = get_reducer(name)
    reducer.add(reducer.initial(), "x", T0, "e")
    assert reducer.result(reducer.initial(), NOW, "s") is None


# --- defaults ---------------------------------------------------------------------------------

DEFAULTS = [
    ("counter", "int32", 0),
    ("counter", "int64", 0),
    ("counter", "double", 0.0),
    ("sum", "float", 0.0),
    ("sum", "int64", 0),
    ("approx_count_distinct", "int64", 0),
    ("unique_list", "string_list", []),
    ("category_count", "dict", {}),
    ("min", "double", None),
    ("max", "int32", None),
    ("mean", "double", None),
    ("first", "string", None),
    ("last", "bool", None),
    ("most_frequent", "string", None),
    ("least_frequent", "int32", None),
    ("time_since_first", "double", None),
    ("time_since_last", "float", None),
]


@pytest.mark.parametrize(("name", "attr_type", "expected"), DEFAULTS)
def test_default_for(name: str, attr_type: str, expected: Any) -> None:
    got = default_for(name, attr_type)
    assert got == expected and type(got) is type(expected)


def test_defaults_cover_every_aggregation_and_are_fresh() -> None:
    assert {name for name, _, _ in DEFAULTS} == set(AGGREGATIONS)
    default_for("unique_list", "string_list").append("x")
    assert default_for("unique_list", "string_list") == []
