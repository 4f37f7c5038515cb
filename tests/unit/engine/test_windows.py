from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from signals_stream.aggregations import AGGREGATIONS, Reducer, get_reducer
from signals_stream.engine.windows import (
    BUCKETS_PER_PERIOD,
    NICE_WIDTHS_MS,
    LifetimeWindow,
    RollingWindow,
    bucket_start,
    bucket_width_ms,
    effective_ttl,
    expired,
    window_for,
)

S = 1_000
MIN = 60 * S
H = 60 * MIN
D = 24 * H
T0 = 1_700_000_040_000  # a multiple of 1 min


def counter(period_ms: int) -> RollingWindow[int]:
    return RollingWindow(get_reducer("counter"), period_ms)


def fill(window: Any, times: list[int], value: Any = "x") -> Any:
    state = window.initial()
    for i, t in enumerate(times):
        state = window.add(state, value, t, f"e{i}")
    return state


# --- bucket widths --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period_ms", "width_ms"),
    [
        (15 * MIN, 30 * S),
        (30 * MIN, MIN),
        (H, 2 * MIN),
        (D, 30 * MIN),
        (7 * D, 4 * H),
        (30 * D, D),
        (90 * D, 2 * D),
        (365 * D, 7 * D),
        (10 * S, 200),
        (S, 20),
        (29, 1),
        (1, 1),
    ],
)
def test_bucket_width_table(period_ms: int, width_ms: int) -> None:
    assert bucket_width_ms(period_ms) == width_ms


@pytest.mark.parametrize("period_ms", [1, 7, 999, 61 * S, 7 * MIN, 5 * H, 3 * D, 400 * D, 10**12])
def test_bucket_width_is_the_largest_nice_width_fitting_30_times(period_ms: int) -> None:
    width = bucket_width_ms(period_ms)
    assert width in NICE_WIDTHS_MS
    assert width * BUCKETS_PER_PERIOD <= period_ms or width == 1
    bigger = [w for w in NICE_WIDTHS_MS if w > width]
    assert not bigger or bigger[0] * BUCKETS_PER_PERIOD > period_ms


@pytest.mark.parametrize("period_ms", [0, -5])
def test_bucket_width_rejects_non_positive_periods(period_ms: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        bucket_width_ms(period_ms)


@pytest.mark.parametrize(
    ("t", "width", "start"),
    [(T0, MIN, T0), (T0 + MIN - 1, MIN, T0), (T0 + MIN, MIN, T0 + MIN), (-1, MIN, -MIN), (0, 7, 0)],
)
def test_bucket_start_floors_to_the_epoch_grid(t: int, width: int, start: int) -> None:
    assert bucket_start(t, width) == start


# --- placement, lateness and pruning ---------------------------------------------------------


def test_events_go_to_the_bucket_of_their_event_time() -> None:
    window = counter(30 * MIN)
    state = fill(window, [T0, T0 + 59_999, T0 + MIN, T0 + 5 * MIN + 1])
    assert state == [[T0, 2], [T0 + MIN, 1], [T0 + 5 * MIN, 1]]


def test_out_of_order_events_land_in_their_own_buckets() -> None:
    window = counter(30 * MIN)
    state = fill(
        window, [T0 + 10 * MIN, T0 + 2 * MIN, T0 + 10 * MIN + 5, T0 + 7 * MIN, T0 + 2 * MIN]
    )
    assert state == [[T0 + 2 * MIN, 2], [T0 + 7 * MIN, 1], [T0 + 10 * MIN, 2]]


def test_buckets_older_than_the_period_of_the_newest_event_are_pruned_on_write() -> None:
    window = counter(30 * MIN)
    state = fill(window, [T0 + i * MIN for i in range(120)])
    newest = T0 + 119 * MIN
    assert state[-1][0] == newest
    assert state[0][0] == newest - 30 * MIN  # period / width + 1 buckets are kept
    assert len(state) == 31


def test_a_late_event_outside_the_period_of_the_newest_is_dropped() -> None:
    window = counter(30 * MIN)
    newest = T0 + 60 * MIN
    state = fill(window, [newest])
    assert window.add(state, "x", newest - 30 * MIN - 1, "late") == [[newest, 1]]
    state = window.add(state, "x", newest - 30 * MIN, "late, exactly at the period start")
    assert state == [[newest - 30 * MIN, 1], [newest, 1]]


def test_none_opens_no_bucket_for_reducers_that_skip_it() -> None:
    last = RollingWindow(get_reducer("last"), 30 * MIN)
    assert fill(last, [T0], value=None) == []
    assert fill(counter(30 * MIN), [T0], value=None) == [[T0, 1]]


# --- reading against the wall clock ----------------------------------------------------------


def test_an_idle_entity_decays_to_nothing() -> None:
    window = counter(30 * MIN)
    state = fill(window, [T0, T0 + 10_000, T0 + 5 * MIN])
    assert window.read(state, T0 + 6 * MIN) == 3
    assert window.read(state, T0 + 30 * MIN) == 3
    assert window.read(state, T0 + 32 * MIN) == 1
    assert window.read(state, T0 + 40 * MIN) is None  # the engine applies the default (0)


def test_window_edges_are_exact_to_one_bucket() -> None:
    window = counter(30 * MIN)  # 1-minute buckets
    now = T0 + 60 * MIN  # on the bucket grid
    state = fill(window, [now - 30 * MIN - 1, now - 30 * MIN, now])
    # [now - period, now]: the bucket ending at the window start is out, the one at it is in.
    assert window.read(state, now) == 2
    # Off the grid: the bucket straddling the window start counts whole (at most one width).
    assert window.read(state, now + 30_000) == 2
    assert window.read(state, now + MIN) == 1


def test_buckets_after_the_read_clock_are_not_counted() -> None:
    window = counter(30 * MIN)
    state = fill(window, [T0, T0 + 10 * MIN])
    assert window.read(state, T0 + 5 * MIN) == 1
    # The bucket holding `now` counts whole, even for events a little after `now`.
    assert window.read(state, T0 + 10 * MIN - 1) == 1
    assert window.read(state, T0 + 10 * MIN) == 2


@pytest.mark.parametrize(
    ("name", "values", "expected"),
    [
        ("sum", [5, 7, 11], 18),
        ("mean", [5, 7, 11], 9.0),
        ("first", ["a", "b", "c"], "b"),
        ("last", ["a", "b", "c"], "c"),
        ("unique_list", ["x", "y", "x"], ["y", "x"]),
        ("category_count", ["x", "y", "x"], {"x": 1, "y": 1}),
        ("approx_count_distinct", ["x", "y", "x"], 2),
        ("time_since_first", [None, None, None], 10.0),
    ],
)
def test_reducers_read_through_the_window(name: str, values: list[Any], expected: Any) -> None:
    window = RollingWindow(get_reducer(name), 10 * MIN)
    times = [T0, T0 + 5 * MIN, T0 + 12 * MIN]
    state = window.initial()
    for i, (v, t) in enumerate(zip(values, times, strict=True)):
        state = window.add(state, v, t, f"e{i}")
    assert window.read(state, T0 + 15 * MIN, "min") == expected  # the T0 bucket is out


def test_reading_never_changes_the_buckets() -> None:
    window = RollingWindow(get_reducer("unique_list"), 10 * MIN)
    state = fill(window, [T0, T0 + MIN, T0 + 2 * MIN])
    before = orjson.dumps(state)
    result = window.read(state, T0 + 3 * MIN)
    result.append("mutated by the caller")
    window.merged(state, T0 + 3 * MIN)["new"] = 1
    assert orjson.dumps(state) == before


def test_rolling_state_survives_json_round_trip() -> None:
    window = RollingWindow(get_reducer("mean"), 10 * MIN)
    state = fill(window, [T0, T0 + MIN], value=4)
    restored = orjson.loads(orjson.dumps(state))
    assert restored == state
    assert window.read(window.add(restored, 10, T0 + MIN, "n"), T0 + 2 * MIN) == 6.0


def _tile_oracle(
    reducer: Reducer[Any], events: list[tuple[Any, int, str]], lo: int, hi: int
) -> Any:
    state = reducer.initial()
    for value, t, eid in events:
        if lo < t - t % 2_000 <= hi:
            state = reducer.add(state, value, t, eid)
    return state


@pytest.mark.parametrize("name", AGGREGATIONS)
@settings(max_examples=40, deadline=None)
@given(
    raw=st.lists(
        st.tuples(st.sampled_from([None, 1, 2, 3.5, "a", "b"]), st.integers(0, 200_000)),
        max_size=60,
    ),
    after_ms=st.integers(0, 150_000),
)
def test_read_equals_the_reducer_over_the_buckets_in_the_window(
    name: str, raw: list[tuple[Any, int]], after_ms: int
) -> None:
    # Whatever the arrival order, lateness and pruning, a read at or after the newest event
    # equals folding exactly the events whose bucket overlaps [now - period, now].
    reducer = get_reducer(name)
    window = RollingWindow(reducer, MIN)  # 2 s buckets
    events = [(v, T0 + t, f"e{i}") for i, (v, t) in enumerate(raw)]
    state = window.initial()
    for value, t, eid in events:
        state = window.add(state, value, t, eid)
    now = max((t for _, t, _ in events), default=T0) + after_ms
    expected_state = _tile_oracle(reducer, events, now - MIN - 2_000, now)
    got = window.read(state, now, "s")
    expected = reducer.result(expected_state, now, "s")
    if isinstance(expected, float):
        assert math.isclose(got, expected, rel_tol=1e-9)
    else:
        assert got == expected
    assert len(state) <= MIN // 2_000 + 1


@settings(max_examples=60, deadline=None)
@given(offsets=st.lists(st.integers(0, 3 * H), min_size=1, max_size=80))
def test_no_event_inside_the_period_of_the_newest_is_ever_lost(offsets: list[int]) -> None:
    window = counter(30 * MIN)
    times = [T0 + o for o in offsets]
    latest = max(times)
    count = window.read(fill(window, times), latest)
    inside = sum(1 for t in times if t >= latest - 30 * MIN)
    within_one_bucket = sum(1 for t in times if t > latest - 31 * MIN)
    assert inside <= (count or 0) <= within_one_bucket


# --- lifetime and window_for ----------------------------------------------------------------


def test_lifetime_window_is_the_bare_reducer() -> None:
    reducer = get_reducer("last")
    window = window_for(reducer, None)
    assert isinstance(window, LifetimeWindow) and window.period_ms is None
    assert window.state_suffix == reducer.state_suffix
    state = fill(window, [T0 + 10 * D, T0])
    assert state == ["x", T0 + 10 * D, "e0"]
    assert window.read(state, T0 + 400 * D) == "x"


def test_window_for_a_period_is_rolling_and_versions_its_layout() -> None:
    window = window_for(get_reducer("sum"), 7 * D)
    assert isinstance(window, RollingWindow)
    assert window.period_ms == 7 * D and window.width_ms == 4 * H
    assert window.state_suffix == "sum.v1/tiles.v1.w14400000"
    assert RollingWindow(get_reducer("sum"), 7 * D, width_ms=H).state_suffix.endswith("w3600000")


# --- TTL --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attribute", "group", "key", "expected"),
    [
        (1, 2, 3, 1),
        (None, 2, 3, 2),
        (None, None, 3, 3),
        (None, None, None, None),
        (1, None, None, 1),
        (None, 2, None, 2),
    ],
)
def test_ttl_precedence(
    attribute: int | None, group: int | None, key: int | None, expected: int | None
) -> None:
    assert effective_ttl(attribute, group, key) == expected


@pytest.mark.parametrize(
    ("last_update_ms", "ttl_ms", "now_ms", "is_expired"),
    [
        (T0, 7 * D, T0 + 7 * D - 1, False),
        (T0, 7 * D, T0 + 7 * D, True),
        (T0, None, T0 + 10_000 * D, False),
        (None, 7 * D, T0, False),
        (T0, 0, T0, True),
    ],
)
def test_expired(
    last_update_ms: int | None, ttl_ms: int | None, now_ms: int, is_expired: bool
) -> None:
    assert expired(last_update_ms, ttl_ms, now_ms) is is_expired


@settings(max_examples=60, deadline=None)
@example(times=[0, 30 * 3_600_000], split=1, aggregation="counter")  # the first part pruned
@example(times=[30 * 3_600_000, 0, 20 * 3_600_000], split=1, aggregation="unique_list")
@given(
    times=st.lists(st.integers(0, 40 * 3_600_000), min_size=1, max_size=60),
    split=st.integers(0, 60),
    aggregation=st.sampled_from(["counter", "unique_list", "sum", "approx_count_distinct"]),
)
def test_merging_two_bucket_lists_equals_folding_every_event(
    times: list[int], split: int, aggregation: str
) -> None:
    """``RollingWindow.merge`` of two parts (the warehouse's, the log's) is the state of all
    their events folded in one, old buckets pruned as ``add`` prunes them, and leaves its
    second argument alone."""
    window = RollingWindow(get_reducer(aggregation), 24 * 3_600_000)  # 30-minute buckets
    events = [(t, i % 7, f"e{i}") for i, t in enumerate(times)]

    def fold(part: list[tuple[int, int, str]]) -> Any:
        state = window.initial()
        for t, value, eid in part:
            state = window.add(state, value, t, eid)
        return state

    a, b = fold(events[:split]), fold(events[split:])
    b_before = orjson.dumps(b)
    assert window.merge(a, b) == fold(events)
    assert orjson.dumps(b) == b_before
