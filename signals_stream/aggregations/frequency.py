"""Frequency reducers: ``most_frequent``, ``least_frequent`` and ``category_count``.

State: ``{value_key: count}`` (keys from ``encode_value``), at most :data:`FREQUENCY_CAP` (100)
entries, in first-insertion order. Counts of tracked values are exact.

Past the cap (Signals: "tracks at most 100 distinct values" / "keeps the top 100"): a new value
evicts the tracked value with the lowest count (the earliest inserted among equal lowest
counts) and enters with count 1. A value seen twice is therefore never displaced by a stream
of one-off values, and new values can still enter a long-lived lifetime state. ``merge`` adds
counts and keeps the 100 highest ``(count, key)``. Below the cap ``merge`` equals replaying
every event; past it both are approximations and may differ.

Ties are broken by the smallest value key, not "arbitrarily", so results do not depend on
arrival or merge order: ``most_frequent`` = highest count, ``least_frequent`` = lowest count.
``category_count`` returns ``{text: count}`` ordered by count (descending), then key; non-string
values are rendered as text (``12``, ``1.5``, ``true``) because JSON object keys are strings.
"""

from __future__ import annotations

from typing import Any

from signals_stream.aggregations.base import (
    KEY_TAG,
    Reducer,
    decode_value,
    encode_value,
    render_value,
)

__all__ = ["FREQUENCY_CAP", "CategoryCount", "LeastFrequent", "MostFrequent"]

FREQUENCY_CAP = 100

Counts = dict[str, int]


class _Frequency(Reducer[Counts]):
    __slots__ = ()

    def initial(self) -> Counts:
        return {}

    def add(self, state: Counts, value: Any, event_time_ms: int, event_id: str) -> Counts:
        if value is None:
            return state
        key = value if type(value) is str and not value.startswith(KEY_TAG) else encode_value(value)
        count = state.get(key)
        if count is not None:
            state[key] = count + 1
            return state
        if len(state) >= FREQUENCY_CAP:
            # C-level scans: this runs for every new value once 100 values are tracked.
            counts = list(state.values())
            del state[list(state)[counts.index(min(counts))]]
        state[key] = 1
        return state

    def merge(self, a: Counts, b: Counts) -> Counts:
        get = a.get
        for key, count in b.items():
            a[key] = get(key, 0) + count
        if len(a) > FREQUENCY_CAP:
            kept = sorted(a.items(), key=_by_count_desc)[:FREQUENCY_CAP]
            return dict(kept)
        return a


def _by_count_desc(item: tuple[str, int]) -> tuple[int, str]:
    return -item[1], item[0]


def _by_count_asc(item: tuple[str, int]) -> tuple[int, str]:
    return item[1], item[0]


class MostFrequent(_Frequency):
    """``most_frequent``: the value with the highest count."""

    __slots__ = ()
    name = "most_frequent"
    state_suffix = "most_frequent.v1"

    def result(self, state: Counts, now_ms: int, time_unit: str | None = None) -> Any:
        if not state:
            return None
        return decode_value(min(state.items(), key=_by_count_desc)[0])


class LeastFrequent(_Frequency):
    """``least_frequent``: the value with the lowest count among the tracked values."""

    __slots__ = ()
    name = "least_frequent"
    state_suffix = "least_frequent.v1"

    def result(self, state: Counts, now_ms: int, time_unit: str | None = None) -> Any:
        if not state:
            return None
        return decode_value(min(state.items(), key=_by_count_asc)[0])


class CategoryCount(_Frequency):
    """``category_count``: ``{value: count}`` of the tracked (top 100) values."""

    __slots__ = ()
    name = "category_count"
    state_suffix = "category_count.v1"

    def result(
        self, state: Counts, now_ms: int, time_unit: str | None = None
    ) -> dict[str, int] | None:
        if not state:
            return None
        out: dict[str, int] = {}
        for key, count in sorted(state.items(), key=_by_count_desc):
            text = render_value(key)
            # 1 and "1" render alike; add them up rather than drop one.
            out[text] = out.get(text, 0) + count
        return out
