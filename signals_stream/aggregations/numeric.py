"""Algebraic reducers: ``counter``, ``sum``, ``min``, ``max`` and ``mean``.

``counter`` counts the events that reach it (the engine has already applied ``events`` and
``criteria``); it has no property, so the value is ignored and ``None`` is counted. The
numeric reducers take ``int`` and finite ``float`` values only: ``None``, ``bool``, strings,
NaN and infinities are skipped (NaN/inf would also not survive JSON).

``min`` and ``max`` also take timestamps (the definitions allow a timestamp property): a
``datetime`` or an ISO-8601 string is normalized by ``iso_utc`` to fixed-width UTC text, whose
string order is time order, and the result is that text. An attribute should see one kind;
if it sees both, numbers take precedence (so the outcome still ignores order).
"""

from __future__ import annotations

from math import isfinite
from typing import TYPE_CHECKING, Any, TypeAlias, TypeGuard

from signals_stream.aggregations.base import Reducer, timestamp_text

__all__ = ["Count", "Max", "Mean", "Min", "Sum"]

Number: TypeAlias = int | float
# A number, or a timestamp as fixed-width ISO text (string order = time order).
Extremum: TypeAlias = int | float | str | None
# Forms are tested with `type(x) is str` (cheaper than isinstance on a miss), which mypy narrows
# in the true branch only: `if TYPE_CHECKING: assert ...` states the other form for the checker.


def _is_number(value: Any) -> TypeGuard[Number]:
    # Exact type checks: bool is an int subclass but is not a number here.
    t = type(value)
    return t is int or (t is float and isfinite(value))


class Count(Reducer[int]):
    """``counter``: number of events. State: ``int``."""

    __slots__ = ()
    name = "counter"
    state_suffix = "counter.v1"
    skips_none = False

    def initial(self) -> int:
        return 0

    def add(self, state: int, value: Any, event_time_ms: int, event_id: str) -> int:
        return state + 1

    def merge(self, a: int, b: int) -> int:
        return a + b

    def result(self, state: int, now_ms: int, time_unit: str | None = None) -> int | None:
        return state or None


class Sum(Reducer[Number | None]):
    """``sum``. State: the running sum, or ``None`` before the first number."""

    __slots__ = ()
    name = "sum"
    state_suffix = "sum.v1"

    def initial(self) -> Number | None:
        return None

    def add(
        self, state: Number | None, value: Any, event_time_ms: int, event_id: str
    ) -> Number | None:
        if not _is_number(value):
            return state
        return value if state is None else state + value

    def merge(self, a: Number | None, b: Number | None) -> Number | None:
        if b is None:
            return a
        return b if a is None else a + b

    def result(
        self, state: Number | None, now_ms: int, time_unit: str | None = None
    ) -> Number | None:
        return state


def _greater(x: Number, y: Number) -> bool:
    """``x > y``, with equal int and float deciding for the float, so the kept value does not
    depend on arrival order (``max(0, 0.0)`` is always ``0.0``)."""
    return x > y or (x == y and type(x) is float and type(y) is not float)


class _Extreme(Reducer[Extremum]):
    """``min`` / ``max``: the state is the best number, else the best timestamp text (fixed
    width UTC, so string order is time order); numbers take precedence over timestamps.
    Subclasses say which of two values of one kind wins."""

    __slots__ = ()

    @staticmethod
    def _number_wins(candidate: Number, incumbent: Number) -> bool:
        raise NotImplementedError

    @staticmethod
    def _text_wins(candidate: str, incumbent: str) -> bool:
        raise NotImplementedError

    def initial(self) -> Extremum:
        return None

    def add(self, state: Extremum, value: Any, event_time_ms: int, event_id: str) -> Extremum:
        if _is_number(value):
            if state is None or type(state) is str:
                return value
            if TYPE_CHECKING:
                assert not isinstance(state, str)
            return value if self._number_wins(value, state) else state
        if state is None or type(state) is str:
            text = timestamp_text(value)
            if text is not None and (state is None or self._text_wins(text, state)):
                return text
        return state

    def merge(self, a: Extremum, b: Extremum) -> Extremum:
        if a is None or b is None:
            return b if a is None else a
        if (type(a) is str) != (type(b) is str):
            return b if type(a) is str else a  # numbers take precedence over timestamps
        if type(a) is str:
            if TYPE_CHECKING:
                assert isinstance(b, str)
            return b if self._text_wins(b, a) else a
        if TYPE_CHECKING:
            assert not isinstance(a, str) and not isinstance(b, str)
        return b if self._number_wins(b, a) else a

    def result(self, state: Extremum, now_ms: int, time_unit: str | None = None) -> Extremum:
        return state


class Min(_Extreme):
    """``min``. State: the smallest number or timestamp text, or ``None``."""

    __slots__ = ()
    name = "min"
    state_suffix = "min.v1"

    @staticmethod
    def _number_wins(candidate: Number, incumbent: Number) -> bool:
        return _greater(incumbent, candidate)

    @staticmethod
    def _text_wins(candidate: str, incumbent: str) -> bool:
        return candidate < incumbent


class Max(_Extreme):
    """``max``. State: the largest number or timestamp text, or ``None``."""

    __slots__ = ()
    name = "max"
    state_suffix = "max.v1"

    @staticmethod
    def _number_wins(candidate: Number, incumbent: Number) -> bool:
        return _greater(candidate, incumbent)

    @staticmethod
    def _text_wins(candidate: str, incumbent: str) -> bool:
        return candidate > incumbent


class Mean(Reducer[list[Number] | None]):
    """``mean``. State: ``[sum, count]`` (never the mean itself, so buckets merge exactly)."""

    __slots__ = ()
    name = "mean"
    state_suffix = "mean.v1"

    def initial(self) -> list[Number] | None:
        return None

    def add(
        self, state: list[Number] | None, value: Any, event_time_ms: int, event_id: str
    ) -> list[Number] | None:
        if not _is_number(value):
            return state
        if state is None:
            return [value, 1]
        state[0] += value
        state[1] += 1
        return state

    def merge(self, a: list[Number] | None, b: list[Number] | None) -> list[Number] | None:
        if b is None:
            return a
        if a is None:
            return [b[0], b[1]]
        a[0] += b[0]
        a[1] += b[1]
        return a

    def result(
        self, state: list[Number] | None, now_ms: int, time_unit: str | None = None
    ) -> float | None:
        return None if state is None else state[0] / state[1]
