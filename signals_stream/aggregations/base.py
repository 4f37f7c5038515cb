"""The reducer interface shared by every aggregation, and the value-key codec.

Contract (every reducer, every state):

* ``initial()`` returns a fresh empty state (a new object for container states).
* ``add(state, value, event_time_ms, event_id)`` **may mutate** ``state`` and returns the state
  to keep; callers always store the return value (scalar states are immutable, so for them
  the return value is a new object). No per-event objects are created when a container state
  already holds the value.
* ``merge(a, b)`` **may mutate** ``a`` and returns the merged state; ``b`` is never mutated,
  and nothing later done to the result changes ``b`` (the result shares only immutable parts
  of it), so stored buckets can be merged into a fresh accumulator.
* ``merge_all(states)`` merges many states into a fresh one (a fold of ``merge`` unless a
  reducer has a cheaper one-pass form); used by rolling-window reads.
* ``result(state, now_ms, time_unit)`` never mutates; it returns ``None`` when no value
  contributed to the state (the caller then applies ``default_value`` or ``default_for``).

States are JSON-native (``None``, ints, floats, strings, lists, dicts with string keys) and
survive an orjson round trip unchanged, so rows need no per-reducer codec. Each reducer has a
``state_suffix`` (``"<name>.v<N>"``); bump ``N`` whenever the stored layout changes so old
state is never read with new code.

Value keys. Reducers that key state by value (frequency, unique list, HLL) need string dict
keys that keep the value's type (``1``, ``1.0``, ``True`` and ``"1"`` are different values).
A string is its own key unless it starts with :data:`KEY_TAG` (U+007F, which JSON leaves
unescaped); every other value is ``KEY_TAG`` + a type letter + a text form::

    "abc"        -> "abc"             str (the fast path)
    "\\x7fabc"    -> "\\x7fs\\x7fabc"    str that starts with the tag
    12           -> "\\x7fi12"         int
    1.5          -> "\\x7ff1.5"        float (repr)
    True / False -> "\\x7fbt" / "\\x7fbf"
    datetime     -> its iso_utc() text, as a str (so it decodes to that text)
    [1, "a"]     -> "\\x7fj[1,\\"a\\"]"   anything else, as canonical JSON (sorted keys)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar

import orjson

__all__ = [
    "KEY_TAG",
    "TIME_UNIT_MS",
    "Reducer",
    "S",
    "decode_value",
    "encode_value",
    "iso_utc",
    "render_value",
    "time_unit_ms",
    "timestamp_text",
]

S = TypeVar("S")

KEY_TAG = "\x7f"

# The SDK's ``time_unit`` enumeration for time_since_* (`sdk:models/model.py`).
TIME_UNIT_MS: dict[str, int] = {"s": 1_000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}


class Reducer(ABC, Generic[S]):
    """One aggregation: stateless object, all state passed in and out (see module docstring).

    Attributes:
        name: the Signals aggregation name (``"counter"``, ``"unique_list"``, ...).
        state_suffix: ``"<name>.v<N>"``; identifies the stored layout.
        skips_none: True when ``add`` ignores a ``None`` value, so a caller may skip the call
            (and a rolling window need not open a bucket for it).
    """

    __slots__ = ()

    name: ClassVar[str]
    state_suffix: ClassVar[str]
    skips_none: ClassVar[bool] = True

    @abstractmethod
    def initial(self) -> S:
        """A fresh empty state."""

    @abstractmethod
    def add(self, state: S, value: Any, event_time_ms: int, event_id: str) -> S:
        """Fold one event into ``state`` (may mutate it) and return the state to keep.

        Args:
            state: the current state.
            value: the property value (ignored by ``counter`` and ``time_since_*``).
            event_time_ms: the event's ``derived_tstamp`` in epoch milliseconds.
            event_id: the event's id, used to break event-time ties deterministically.

        Returns:
            The new state (possibly the same, mutated object).
        """

    @abstractmethod
    def merge(self, a: S, b: S) -> S:
        """Combine two partial states (may mutate ``a``; never mutates ``b``).

        Args:
            a: the accumulator.
            b: the state merged into it.

        Returns:
            The merged state.
        """

    def merge_all(self, states: Iterable[S]) -> S:
        """Merge many partial states into a fresh one (none of them is mutated).

        Equal to folding :meth:`merge` from :meth:`initial`; reducers override it when a
        one-pass merge is cheaper (``unique_list``, ``approx_count_distinct``).

        Args:
            states: partial states, e.g. the buckets of a rolling window.

        Returns:
            The merged state.
        """
        merge = self.merge
        acc = self.initial()
        for state in states:
            acc = merge(acc, state)
        return acc

    @abstractmethod
    def result(self, state: S, now_ms: int, time_unit: str | None = None) -> Any:
        """The attribute value of ``state`` (``None`` when nothing was aggregated).

        Args:
            state: the state to read.
            now_ms: the wall clock at read time (used by ``time_since_*`` only).
            time_unit: ``s``, ``min``, ``h`` or ``d`` (used by ``time_since_*`` only).

        Returns:
            The JSON-native attribute value, or ``None``.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def encode_value(value: Any) -> str:
    """The string key of a value (see the module docstring for the layout).

    Args:
        value: a non-``None`` property value.

    Returns:
        A string that is distinct for values of different types.
    """
    t = type(value)
    if t is str:
        text: str = value
        return KEY_TAG + "s" + text if text.startswith(KEY_TAG) else text
    if t is int:
        return KEY_TAG + "i" + str(value)
    if t is bool:
        return KEY_TAG + ("bt" if value else "bf")
    if t is float:
        return KEY_TAG + "f" + repr(value)
    if isinstance(value, datetime):
        return encode_value(iso_utc(value))
    return KEY_TAG + "j" + orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def iso_utc(value: datetime) -> str:
    """A datetime as fixed-width ISO-8601 UTC text (``2024-03-15T09:05:29.634000Z``).

    Fixed width (microseconds always present), so string order is time order. Naive values
    are taken as UTC (Snowplow timestamps are UTC).

    Args:
        value: a datetime.

    Returns:
        The text.
    """
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"


def timestamp_text(value: Any) -> str | None:
    """:func:`iso_utc` of a datetime or of an ISO-8601 string; ``None`` for anything else.

    Args:
        value: a property value.

    Returns:
        The normalized text, or ``None`` when the value is not a timestamp.
    """
    if isinstance(value, datetime):
        return iso_utc(value)
    if type(value) is str:
        try:
            return iso_utc(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


def decode_value(key: str) -> Any:
    """Invert :func:`encode_value` (a ``datetime`` comes back as its :func:`iso_utc` text).

    Args:
        key: a key made by :func:`encode_value`.

    Returns:
        The original value.
    """
    if not key.startswith(KEY_TAG):
        return key
    kind = key[1:2]
    body = key[2:]
    if kind == "s":
        return body
    if kind == "i":
        return int(body)
    if kind == "b":
        return body == "t"
    if kind == "f":
        return float(body)
    return orjson.loads(body)


def render_value(key: str) -> str:
    """The text of a value key as a JSON object key (``category_count`` results).

    Args:
        key: a key made by :func:`encode_value`.

    Returns:
        The string itself, an int or float as text, a bool as ``"true"``/``"false"``, or
        anything else as its canonical JSON.
    """
    if not key.startswith(KEY_TAG):
        return key
    kind = key[1:2]
    if kind == "b":
        return "true" if key[2:] == "t" else "false"
    return key[2:]


def time_unit_ms(time_unit: str | None) -> int:
    """Milliseconds per ``time_unit``.

    Args:
        time_unit: ``s``, ``min``, ``h`` or ``d``.

    Returns:
        The unit length in milliseconds.

    Raises:
        ValueError: unknown or missing unit (definitions reject these on publish).
    """
    try:
        return TIME_UNIT_MS[time_unit]  # type: ignore[index]
    except KeyError:
        known = sorted(TIME_UNIT_MS)
        raise ValueError(f"time_unit must be one of {known}, not {time_unit!r}") from None
