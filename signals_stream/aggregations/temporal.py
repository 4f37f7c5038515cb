"""Event-time ordered reducers: ``first``, ``last``, ``time_since_first``, ``time_since_last``.

Order is event time (``derived_tstamp``), never arrival: a late event that happened earlier
becomes ``first``. Equal event times are broken by ``event_id`` (``first`` keeps the smallest,
``last`` the largest), so the outcome does not depend on arrival or merge order, and a
replayed event (same time, same id) changes nothing. ``None`` values are skipped, so ``last``
of an optional field keeps the last value that was present. A ``datetime`` value is stored as
its ``iso_utc`` text.

``time_since_*`` have no property of their own (Signals fixes it to ``derived_tstamp``): they
store the event time and compute ``now - stored`` at read time, in ``time_unit``, clamped at 0.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from signals_stream.aggregations.base import Reducer, iso_utc, time_unit_ms

__all__ = ["First", "Last", "TimeSinceFirst", "TimeSinceLast"]

# [value, event_time_ms, event_id]; replaced, never mutated, so merges may share it.
Pick = list[Any]


class _Pick(Reducer[Pick | None]):
    """``first`` / ``last``: keep the value whose ``(event_time_ms, event_id)`` wins; the event
    id breaks event-time ties, so arrival order never matters. Subclasses say which wins."""

    __slots__ = ()

    @staticmethod
    def _wins(candidate: tuple[int, str], incumbent: tuple[int, str]) -> bool:
        raise NotImplementedError

    def initial(self) -> Pick | None:
        return None

    def add(self, state: Pick | None, value: Any, event_time_ms: int, event_id: str) -> Pick | None:
        if value is None:
            return state
        event_id = event_id or ""
        if state is None or self._wins((event_time_ms, event_id), (state[1], state[2])):
            if isinstance(value, datetime):  # keep state JSON-native
                value = iso_utc(value)
            return [value, event_time_ms, event_id]
        return state

    def merge(self, a: Pick | None, b: Pick | None) -> Pick | None:
        if a is None:
            return b
        if b is None:
            return a
        return b if self._wins((b[1], b[2]), (a[1], a[2])) else a

    def result(self, state: Pick | None, now_ms: int, time_unit: str | None = None) -> Any:
        return None if state is None else state[0]


class First(_Pick):
    """``first``: the value with the smallest ``(event_time_ms, event_id)``."""

    __slots__ = ()
    name = "first"
    state_suffix = "first.v1"

    @staticmethod
    def _wins(candidate: tuple[int, str], incumbent: tuple[int, str]) -> bool:
        return candidate < incumbent


class Last(_Pick):
    """``last``: the value with the largest ``(event_time_ms, event_id)``."""

    __slots__ = ()
    name = "last"
    state_suffix = "last.v1"

    @staticmethod
    def _wins(candidate: tuple[int, str], incumbent: tuple[int, str]) -> bool:
        return candidate > incumbent


def _elapsed(since_ms: int | None, now_ms: int, time_unit: str | None) -> float | None:
    if since_ms is None:
        return None
    unit_ms = time_unit_ms(time_unit)
    # Clamped: an event stamped after the read clock (clock skew) reads as "just now".
    return max(0, now_ms - since_ms) / unit_ms


class _TimeSince(Reducer[int | None]):
    """``time_since_*``: store one event time (ms); the value is computed at read time."""

    __slots__ = ()
    skips_none = False

    @staticmethod
    def _wins(candidate: int, incumbent: int) -> bool:
        raise NotImplementedError

    def initial(self) -> int | None:
        return None

    def add(self, state: int | None, value: Any, event_time_ms: int, event_id: str) -> int | None:
        return event_time_ms if state is None or self._wins(event_time_ms, state) else state

    def merge(self, a: int | None, b: int | None) -> int | None:
        if b is None:
            return a
        return b if a is None or self._wins(b, a) else a

    def result(self, state: int | None, now_ms: int, time_unit: str | None = None) -> float | None:
        return _elapsed(state, now_ms, time_unit)


class TimeSinceFirst(_TimeSince):
    """``time_since_first``. State: the smallest event time (ms)."""

    __slots__ = ()
    name = "time_since_first"
    state_suffix = "time_since_first.v1"

    @staticmethod
    def _wins(candidate: int, incumbent: int) -> bool:
        return candidate < incumbent


class TimeSinceLast(_TimeSince):
    """``time_since_last``. State: the largest event time (ms)."""

    __slots__ = ()
    name = "time_since_last"
    state_suffix = "time_since_last.v1"

    @staticmethod
    def _wins(candidate: int, incumbent: int) -> bool:
        return candidate > incumbent
