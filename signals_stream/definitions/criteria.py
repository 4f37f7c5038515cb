"""Attribute criteria: the event filter ``{"all": [...], "any": [...]}`` and its compiled form.

Comparisons follow SQL, as the warehouse engine of Signals does: any comparison with a null
property is false (so ``!= ""`` also drops events without the field), ``like`` is SQL ``LIKE``
(``%`` any run, ``_`` one character, ``\\`` escapes; case-sensitive) and values are coerced
between numbers, numeric strings and ISO 8601 timestamps before comparing.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import model_validator

from signals_stream.definitions._base import DefinitionModel
from signals_stream.definitions.evaluate import EventView, as_datetime, as_text, compile_property
from signals_stream.definitions.properties import Property
from signals_stream.patterns.like import like_predicate

__all__ = [
    "OPERATORS",
    "Criteria",
    "Criterion",
    "CriterionOperator",
    "CriterionValue",
    "Predicate",
    "compile_criteria",
    "compile_criterion",
    "like_to_regex",
    "value_predicate",
]

CriterionOperator = Literal["=", "!=", "<", ">", "<=", ">=", "like", "in", "is null", "is not null"]
OPERATORS: tuple[str, ...] = get_args(CriterionOperator)
Scalar = str | int | float | bool
# Lists are validated item by item (so `[true]` stays boolean), then checked homogeneous.
CriterionValue = str | int | float | bool | tuple[str | int | float | bool, ...] | None
Predicate = Callable[[EventView], bool]

_ORDERING = {"<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge}


class Criterion(DefinitionModel):
    """One condition on a property of the event.

    Args:
        property: atomic, event, entity or calculated property (``date_part`` allowed).
        operator: one of :data:`OPERATORS`.
        value: the comparand: a scalar; a list for ``in``; a ``LIKE`` pattern for ``like``;
            omitted for ``is null`` / ``is not null``.
    """

    property: Property
    operator: CriterionOperator
    value: CriterionValue = None

    @model_validator(mode="after")
    def _value_fits_operator(self) -> Criterion:
        op, value = self.operator, self.value
        if op in ("is null", "is not null"):
            if value is not None:
                raise ValueError(f"value: must be omitted for {op!r}")
        elif value is None:
            raise ValueError(f"value: required for {op!r} (use 'is null' to test for null)")
        elif op == "in":
            if not isinstance(value, tuple) or not value:
                raise ValueError("value: 'in' needs a non-empty list")
            if len({_family(item) for item in value}) > 1:
                raise ValueError("value: list items must all be strings, numbers or booleans")
        elif isinstance(value, tuple):
            if len({_family(item) for item in value}) > 1:
                raise ValueError("value: list items must all be strings, numbers or booleans")
            if op not in ("=", "!="):
                raise ValueError(f"value: a list is only valid with 'in', '=' or '!=', not {op!r}")
        elif op == "like":
            if not isinstance(value, str):
                raise ValueError("value: 'like' needs a string pattern")
        elif op in _ORDERING and isinstance(value, bool):
            raise ValueError(f"value: {op!r} cannot compare booleans")
        return self


def _family(value: Scalar) -> type:
    if isinstance(value, bool | str):
        return type(value)
    return float  # int and float mix freely


class Criteria(DefinitionModel):
    """Flat event filter: every ``all`` criterion and at least one ``any`` criterion must hold.

    Both blocks may be given (they are ANDed); an empty or absent block imposes nothing.
    """

    all: tuple[Criterion, ...] | None = None
    any: tuple[Criterion, ...] | None = None


def like_to_regex(pattern: str) -> re.Pattern[str]:
    r"""Compile a SQL ``LIKE`` pattern to an anchored regex.

    ``%`` matches any run of characters (newlines included), ``_`` exactly one, and a backslash
    makes the next character literal (``\%``, ``\_``, ``\\``). Everything else is literal.
    """
    out: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            out.append(re.escape(next(chars, "\\")))
        elif char == "%":
            out.append(".*")
        elif char == "_":
            out.append(".")
        else:
            out.append(re.escape(char))
    return re.compile("".join(out), re.DOTALL)


class _Comparand:
    """The criterion value, pre-converted once to every type an event value may have."""

    __slots__ = ("as_bool", "as_datetime", "as_number", "raw")

    def __init__(self, value: Scalar) -> None:
        self.raw = value
        self.as_number: float | int | None = None
        self.as_bool: bool | None = None
        if isinstance(value, bool):
            self.as_bool = value
        elif isinstance(value, int | float):
            self.as_number = value
        else:
            self.as_number = _parse_number(value)
            self.as_bool = {"true": True, "false": False}.get(value.lower())
        self.as_datetime = as_datetime(value) if isinstance(value, str) else None

    def pair(self, actual: Any) -> tuple[Any, Any] | None:
        """``(actual, value)`` of one comparable type, or ``None`` if they cannot compare."""
        if isinstance(actual, bool):
            return None if self.as_bool is None else (actual, self.as_bool)
        if isinstance(actual, int | float):
            return None if self.as_number is None else (actual, self.as_number)
        if isinstance(actual, str):
            if isinstance(self.raw, str):
                return actual, self.raw
            number = _parse_number(actual)
            return None if number is None or self.as_number is None else (number, self.as_number)
        if isinstance(actual, datetime):
            moment = as_datetime(actual)
            return None if self.as_datetime is None else (moment, self.as_datetime)
        return None


def _parse_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _equals(comparand: _Comparand | tuple[Any, ...]) -> Callable[[Any], bool]:
    if isinstance(comparand, tuple):  # whole-array equality
        return lambda actual: isinstance(actual, list) and tuple(actual) == comparand

    def eq(actual: Any) -> bool:
        pair = comparand.pair(actual)
        return pair is not None and pair[0] == pair[1]

    return eq


def value_predicate(op: str, value: CriterionValue) -> Callable[[Any], bool]:
    """``test(actual) -> bool`` for a non-null actual value."""
    if op == "=":
        return _equals(value if isinstance(value, tuple) else _Comparand(value))  # type: ignore[arg-type]
    if op == "!=":
        eq = _equals(value if isinstance(value, tuple) else _Comparand(value))  # type: ignore[arg-type]
        return lambda actual: not eq(actual)
    if op == "like":
        # Linear time: a backtracking regex here would let a visitor's URL stall the stream.
        matches = like_predicate(str(value))
        return lambda actual: matches(as_text(actual))
    if op == "in":
        tests = tuple(_equals(_Comparand(item)) for item in value)  # type: ignore[union-attr]
        strings = frozenset(item for item in value if isinstance(item, str))  # type: ignore[union-attr]
        if len(strings) == len(tests):  # the common case: a set lookup for strings

            def in_strings(actual: Any) -> bool:
                if isinstance(actual, str):
                    return actual in strings
                return any(test(actual) for test in tests)

            return in_strings
        return lambda actual: any(test(actual) for test in tests)
    compare = _ORDERING[op]
    comparand = _Comparand(value)  # type: ignore[arg-type]

    def ordered(actual: Any) -> bool:
        pair = comparand.pair(actual)
        try:
            return pair is not None and compare(pair[0], pair[1])
        except TypeError:
            return False

    return ordered


def compile_criterion(criterion: Criterion) -> Predicate:
    """Compile one criterion into ``predicate(event) -> bool``."""
    get = compile_property(criterion.property)
    if criterion.operator == "is null":
        return lambda event: get(event) is None
    if criterion.operator == "is not null":
        return lambda event: get(event) is not None
    test = value_predicate(criterion.operator, criterion.value)

    def predicate(event: EventView) -> bool:
        actual = get(event)
        return actual is not None and test(actual)  # SQL: a comparison with null is not true

    return predicate


def always(event: EventView) -> bool:
    """The predicate of no criteria (and of no selectors): every event passes."""
    return True


def compile_criteria(criteria: Criteria | None) -> Predicate:
    """Compile an attribute's criteria; no criteria accept every event."""
    if criteria is None:
        return always
    every = tuple(compile_criterion(c) for c in criteria.all or ())
    some = tuple(compile_criterion(c) for c in criteria.any or ())
    if not every and not some:
        return always

    def passes(event: EventView) -> bool:
        for predicate in every:
            if not predicate(event):
                return False
        if not some:
            return True
        return any(predicate(event) for predicate in some)

    return passes
