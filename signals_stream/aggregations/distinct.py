"""Distinct-value reducers: ``unique_list`` and ``approx_count_distinct``.

``unique_list`` state: ``{value_key: last_seen_ms}``, at most :data:`UNIQUE_LIST_CAP` (100)
entries, kept in ascending ``(last_seen_ms, key)`` order (dicts keep insertion order, also
through JSON), so eviction takes the first entry and in-order events only append. "Most
recent sighting" is by event time, so a late event never makes an old value
look recent. The result is the values ordered oldest to newest by last sighting, ties by
key (``/home``, ``/products``, ``/home`` gives ``["/products", "/home"]``). Past the cap, the
value with the smallest ``(last_seen_ms, key)`` is evicted (LRU); a new value older than all
tracked ones is not inserted at all. Because eviction follows that total order, the state
is always exactly the 100 most recent values, so ``merge`` (union, keep the newest sighting,
keep the 100 newest) equals replaying the events in any order, cap included.

``approx_count_distinct`` state: an :mod:`.hll` sketch (sparse list or dense
string); the result is the rounded estimate.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from signals_stream.aggregations import hll
from signals_stream.aggregations.base import KEY_TAG, Reducer, decode_value, encode_value

__all__ = ["UNIQUE_LIST_CAP", "ApproxCountDistinct", "UniqueList"]

UNIQUE_LIST_CAP = 100

Sightings = dict[str, int]
_NEVER = -(1 << 62)


def _by_recency(item: tuple[str, int]) -> tuple[int, str]:
    return item[1], item[0]


class UniqueList(Reducer[Sightings]):
    """``unique_list``: distinct values, LRU by event time, capped at 100."""

    __slots__ = ()
    name = "unique_list"
    state_suffix = "unique_list.v1"

    def initial(self) -> Sightings:
        return {}

    def add(self, state: Sightings, value: Any, event_time_ms: int, event_id: str) -> Sightings:
        if value is None:
            return state
        key = value if type(value) is str and not value.startswith(KEY_TAG) else encode_value(value)
        seen = state.get(key)
        if seen is not None:
            if event_time_ms <= seen:
                return state
            del state[key]
        elif len(state) >= UNIQUE_LIST_CAP:
            # The dict is kept in (last_seen_ms, key) order, so the LRU value is the first.
            oldest = next(iter(state))
            if (event_time_ms, key) < (state[oldest], oldest):
                return state  # older than everything tracked: it would be evicted at once
            del state[oldest]
        if state:
            newest = next(reversed(state))
            newest_ms = state[newest]
            if event_time_ms < newest_ms or (event_time_ms == newest_ms and key < newest):
                # A late sighting: re-sort (rare; in-order events just append).
                state[key] = event_time_ms
                return dict(sorted(state.items(), key=_by_recency))
        state[key] = event_time_ms
        return state

    def merge(self, a: Sightings, b: Sightings) -> Sightings:
        return self.merge_all((a, b))

    def merge_all(self, states: Iterable[Sightings]) -> Sightings:
        # One sort at the end: the 100 newest of the union equal the fold of pairwise merges.
        union: Sightings = {}
        get = union.get
        for state in states:
            for key, seen in state.items():
                if seen > get(key, _NEVER):
                    union[key] = seen
        return dict(sorted(union.items(), key=_by_recency)[-UNIQUE_LIST_CAP:])

    def result(
        self, state: Sightings, now_ms: int, time_unit: str | None = None
    ) -> list[Any] | None:
        if not state:
            return None
        return [decode_value(key) for key, _ in sorted(state.items(), key=_by_recency)]


class ApproxCountDistinct(Reducer[hll.HllState]):
    """``approx_count_distinct``: HyperLogLog estimate (p = 14, ~0.8 % standard error)."""

    __slots__ = ()
    name = "approx_count_distinct"
    state_suffix = "approx_count_distinct.v1"

    def initial(self) -> hll.HllState:
        return hll.empty()

    def add(
        self, state: hll.HllState, value: Any, event_time_ms: int, event_id: str
    ) -> hll.HllState:
        if value is None:
            return state
        key = value if type(value) is str and not value.startswith(KEY_TAG) else encode_value(value)
        return hll.add_hash(state, hll.hash_key(key))

    def merge(self, a: hll.HllState, b: hll.HllState) -> hll.HllState:
        return hll.merge(a, b)

    def merge_all(self, states: Iterable[hll.HllState]) -> hll.HllState:
        return hll.merge_all(states)

    def result(self, state: hll.HllState, now_ms: int, time_unit: str | None = None) -> int | None:
        if not state or hll.is_empty(state):
            return None
        return round(hll.estimate(state))
