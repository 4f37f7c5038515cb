"""Event-time windows for attribute state: rolling ``period`` tiles, lifetime state, and TTLs.

Rolling windows are tiled (Tecton / Feast / Chalk style). An attribute with a ``period`` keeps
one partial reducer state per bucket of width :func:`bucket_width_ms`::

    [[bucket_start_ms, partial_state], ...]     sorted by start, JSON-native

* **Write** (:meth:`RollingWindow.add`): the event goes to the bucket of its *event time*
  (``derived_tstamp``), late or not. Buckets are pruned on every write that opens a newer
  bucket, relative to the newest bucket start ``N`` (a lower bound of the latest event time):
  a bucket ``s`` goes when ``s <= N - period - width``, i.e. when every event in it is older
  than the period of the newest event. An event whose bucket would be pruned at once is
  dropped (too late to matter for any read at or after the newest event). Nothing is ever
  pruned by the wall clock, so replays and backfills keep their data.
* **Read** (:meth:`RollingWindow.read`): at wall clock ``now``, merge the buckets that overlap
  ``[now - period, now]`` (``now - period - width < s <= now``) and take the reducer's result.
  The window edge is exact to one bucket: events up to one width older than ``now - period``
  may still count, events inside the period always count. An idle entity decays to no value
  (then ``default_value`` / ``default_for``: a rolling counter reads 0).

Bucket widths: the largest "nice" width ``w`` with ``30 * w <= period`` (at least 30 buckets
per period, at most ~75), from 1 ms, 2, 5 ... 1 s, 2, 5, 10, 15, 30 s, 1, 2, 5, 10, 15, 30 min,
1, 2, 3, 4, 6, 12 h, 1 d, 2 d, 7 d. Buckets are aligned to the Unix epoch (UTC). Examples:
PT15M -> 30 s, PT30M -> 1 min, PT1H -> 2 min, P1D -> 30 min, P7D -> 4 h, P30D -> 1 d,
P1Y -> 7 d.

Lifetime attributes (no ``period``) keep one reducer state (:class:`LifetimeWindow`).

TTL: :func:`effective_ttl` applies Signals' precedence (attribute, group, attribute key,
never); :func:`expired` is true once ``now_ms >= last_update_ms + ttl_ms``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from typing import Any, Generic, Protocol

from signals_stream.aggregations.base import Reducer, S

__all__ = [
    "BUCKETS_PER_PERIOD",
    "NICE_WIDTHS_MS",
    "Buckets",
    "LifetimeWindow",
    "RollingWindow",
    "Window",
    "bucket_start",
    "bucket_width_ms",
    "effective_ttl",
    "expired",
    "window_for",
]

BUCKETS_PER_PERIOD = 30

_S = 1_000
_MIN = 60 * _S
_H = 60 * _MIN
_D = 24 * _H
NICE_WIDTHS_MS: tuple[int, ...] = (
    *(1, 2, 5, 10, 20, 50, 100, 200, 500),
    *(_S, 2 * _S, 5 * _S, 10 * _S, 15 * _S, 30 * _S),
    *(_MIN, 2 * _MIN, 5 * _MIN, 10 * _MIN, 15 * _MIN, 30 * _MIN),
    *(_H, 2 * _H, 3 * _H, 4 * _H, 6 * _H, 12 * _H),
    *(_D, 2 * _D, 7 * _D),
)

# One bucket: [bucket_start_ms, partial_state] (a list, not a tuple, so it survives JSON).
Buckets = list[list[Any]]


def bucket_width_ms(period_ms: int) -> int:
    """The bucket width for a rolling period (see the module docstring for the table).

    Args:
        period_ms: the attribute's ``period`` in milliseconds.

    Returns:
        The largest width in :data:`NICE_WIDTHS_MS` that fits 30 times in the period (1 ms for
        periods under 30 ms).

    Raises:
        ValueError: the period is not positive.
    """
    if period_ms <= 0:
        raise ValueError(f"period must be positive, got {period_ms} ms")
    width = 1
    for nice in NICE_WIDTHS_MS:
        if nice * BUCKETS_PER_PERIOD > period_ms:
            break
        width = nice
    return width


def bucket_start(event_time_ms: int, width_ms: int) -> int:
    """The start of the epoch-aligned bucket holding ``event_time_ms`` (floor, also below 0).

    Args:
        event_time_ms: an epoch time in milliseconds.
        width_ms: the bucket width.

    Returns:
        The bucket start: ``event_time_ms - event_time_ms % width_ms``.
    """
    return event_time_ms - event_time_ms % width_ms


def _start(bucket: list[Any]) -> int:
    start: int = bucket[0]
    return start


class Window(Protocol):
    """What the engine calls for one attribute, rolling or lifetime alike."""

    @property
    def period_ms(self) -> int | None: ...
    @property
    def state_suffix(self) -> str: ...
    def initial(self) -> Any: ...
    def add(self, state: Any, value: Any, event_time_ms: int, event_id: str) -> Any: ...
    def merge(self, a: Any, b: Any) -> Any: ...
    def read(self, state: Any, now_ms: int, time_unit: str | None = None) -> Any: ...


class RollingWindow(Generic[S]):
    """A rolling ``period`` over event-time buckets; holds no state itself (one per attribute).

    Args:
        reducer: the attribute's reducer.
        period_ms: the rolling period in milliseconds.
        width_ms: the bucket width; default :func:`bucket_width_ms` of the period.

    Attributes:
        state_suffix: the reducer's suffix plus the tile layout and width, so a change of
            either invalidates stored state.
    """

    __slots__ = (
        "_add",
        "_initial",
        "_merge_all",
        "_result",
        "_skips_none",
        "period_ms",
        "reducer",
        "state_suffix",
        "width_ms",
    )

    def __init__(self, reducer: Reducer[S], period_ms: int, width_ms: int | None = None) -> None:
        self.reducer = reducer
        self.period_ms = period_ms
        self.width_ms = bucket_width_ms(period_ms) if width_ms is None else width_ms
        if self.width_ms <= 0:
            raise ValueError(f"bucket width must be positive, got {self.width_ms} ms")
        self.state_suffix = f"{reducer.state_suffix}/tiles.v1.w{self.width_ms}"
        # Bound once: these run per event per attribute.
        self._add: Callable[[S, Any, int, str], S] = reducer.add
        self._initial: Callable[[], S] = reducer.initial
        self._merge_all: Callable[[list[S]], S] = reducer.merge_all
        self._result: Callable[..., Any] = reducer.result
        self._skips_none = reducer.skips_none

    def __repr__(self) -> str:
        return (
            f"RollingWindow({self.reducer!r}, period_ms={self.period_ms}, width_ms={self.width_ms})"
        )

    def initial(self) -> Buckets:
        """A fresh empty state (no buckets)."""
        return []

    def add(self, state: Buckets, value: Any, event_time_ms: int, event_id: str) -> Buckets:
        """Place one event in the bucket of its event time and prune old buckets.

        Args:
            state: the buckets (updated in place).
            value: the property value.
            event_time_ms: the event's ``derived_tstamp``.
            event_id: the event id (tie-break for ``first`` / ``last``).

        Returns:
            The buckets to keep.
        """
        if value is None and self._skips_none:
            return state
        width = self.width_ms
        start = event_time_ms - event_time_ms % width
        if not state:
            return [[start, self._add(self._initial(), value, event_time_ms, event_id)]]
        newest = state[-1]
        newest_start = newest[0]
        if start == newest_start:  # the common case: the current bucket
            newest[1] = self._add(newest[1], value, event_time_ms, event_id)
            return state
        if start > newest_start:
            state.append([start, self._add(self._initial(), value, event_time_ms, event_id)])
            cutoff = start - self.period_ms - width
            if state[0][0] <= cutoff:
                n = 1
                while state[n][0] <= cutoff:
                    n += 1
                del state[:n]
            return state
        if start <= newest_start - self.period_ms - width:
            return state  # older than the period of the newest event
        pos = bisect_left(state, start, key=_start)
        bucket = state[pos]
        if bucket[0] == start:
            bucket[1] = self._add(bucket[1], value, event_time_ms, event_id)
        else:
            state.insert(pos, [start, self._add(self._initial(), value, event_time_ms, event_id)])
        return state

    def merge(self, a: Buckets, b: Buckets) -> Buckets:
        """Two bucket lists as one (``a`` may be updated; ``b`` is never changed or shared):
        the partials of a bucket start merged, then the buckets older than the period of the
        newest bucket dropped, as :meth:`add` would have dropped them. Order-independent, so
        a window filled elsewhere (the warehouse part of a backfill) merges like its events.
        """
        merge, initial = self.reducer.merge, self._initial
        by_start = {start: partial for start, partial in a}
        for start, partial in b:
            mine = by_start.get(start)
            by_start[start] = merge(initial() if mine is None else mine, partial)
        if not by_start:
            return []
        cutoff = max(by_start) - self.period_ms - self.width_ms
        return [[start, by_start[start]] for start in sorted(by_start) if start > cutoff]

    def merged(self, state: Buckets, now_ms: int) -> Any:
        """The reducer state of the window ending at ``now_ms`` (buckets are not modified).

        Args:
            state: the buckets.
            now_ms: the wall clock at read time.

        Returns:
            A fresh reducer state merging the buckets that overlap ``[now - period, now]``.
        """
        lowest = now_ms - self.period_ms - self.width_ms
        return self._merge_all([partial for start, partial in state if lowest < start <= now_ms])

    def read(self, state: Buckets, now_ms: int, time_unit: str | None = None) -> Any:
        """The attribute value at wall clock ``now_ms``.

        Args:
            state: the buckets.
            now_ms: the wall clock at read time.
            time_unit: for ``time_since_*``.

        Returns:
            The reducer result over the window, ``None`` when nothing is in it.
        """
        return self._result(self.merged(state, now_ms), now_ms, time_unit)


class LifetimeWindow(Generic[S]):
    """No period: one reducer state since publication (subject to TTL).

    ``initial``, ``add`` and ``read`` are the reducer's ``initial``, ``add`` and ``result``
    (bound at construction, so there is no extra call layer on the hot path).

    Args:
        reducer: the attribute's reducer.
    """

    __slots__ = ("add", "initial", "merge", "read", "reducer", "state_suffix")

    period_ms: None = None

    def __init__(self, reducer: Reducer[S]) -> None:
        self.reducer = reducer
        self.state_suffix: str = reducer.state_suffix
        self.initial: Callable[[], S] = reducer.initial
        self.add: Callable[[S, Any, int, str], S] = reducer.add
        self.merge: Callable[[S, S], S] = reducer.merge
        self.read: Callable[..., Any] = reducer.result

    def __repr__(self) -> str:
        return f"LifetimeWindow({self.reducer!r})"


def window_for(reducer: Reducer[Any], period_ms: int | None) -> Window:
    """The window of an attribute: rolling when it has a ``period``, lifetime otherwise.

    Args:
        reducer: the attribute's reducer.
        period_ms: the ``period`` in milliseconds, or ``None`` for lifetime.

    Returns:
        A :class:`RollingWindow` or a :class:`LifetimeWindow`.
    """
    if period_ms is None:
        return LifetimeWindow(reducer)
    return RollingWindow(reducer, period_ms)


def effective_ttl(
    attribute_ttl_ms: int | None, group_ttl_ms: int | None, key_ttl_ms: int | None
) -> int | None:
    """Signals' TTL precedence: attribute ``ttl``, then group ``ttl``, then attribute key
    ``ttl``, then unlimited.

    Args:
        attribute_ttl_ms: the attribute's ``ttl`` (lifetime attributes only).
        group_ttl_ms: the attribute group's ``ttl``.
        key_ttl_ms: the attribute key's ``ttl``.

    Returns:
        The TTL in milliseconds, or ``None`` for never.
    """
    if attribute_ttl_ms is not None:
        return attribute_ttl_ms
    if group_ttl_ms is not None:
        return group_ttl_ms
    return key_ttl_ms


def expired(last_update_ms: int | None, ttl_ms: int | None, now_ms: int) -> bool:
    """Whether a value last updated at ``last_update_ms`` has outlived its TTL at ``now_ms``.

    Args:
        last_update_ms: when the value was last updated (the row's wall-clock ``updated_ms``;
            every update resets the timer); ``None`` means never stored.
        ttl_ms: from :func:`effective_ttl`; ``None`` never expires.
        now_ms: the wall clock.

    Returns:
        True once ``now_ms >= last_update_ms + ttl_ms`` (the value then reads as ``None``).
    """
    if ttl_ms is None or last_update_ms is None:
        return False
    return now_ms - last_update_ms >= ttl_ms
