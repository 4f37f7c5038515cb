"""Rule criteria compiled into predicates over attribute values, plus an explaining evaluator.

Values are read as the engine returns them: numbers, strings, booleans, lists, dicts and ``None``.
Semantics follow the attribute criteria (``signals_stream.definitions.criteria``), whose value
comparison is reused:

- SQL null: every comparison with a null value is false. That includes ``!=``, ``not like``,
  ``not rlike`` and ``not in``: ``x != 3`` does not hold while ``x`` is null. Only ``is null``
  tests for null.
- Values are coerced between numbers and numeric strings, ISO 8601 strings and timestamps, and
  ``"true"``/``"false"`` and booleans. Booleans never equal numbers. ``=`` or ``!=`` with a list
  compares a whole array.
- ``like`` is anchored SQL ``LIKE``; ``rlike`` is an unanchored RE2-style search. Both match
  non-strings as text (``true``, ``2.5``, JSON for lists and dicts) and run in linear time
  (``signals_stream.patterns``).
- ``changed`` holds when the value differs from the previous one, including the change from
  null to a first value. ``1`` and ``1.0`` are the same value; ``True`` and ``1`` are not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from signals_stream.definitions.criteria import (
    value_predicate as _compare,  # the attribute criteria's
)
from signals_stream.definitions.evaluate import as_text
from signals_stream.interventions.definitions import (
    CriteriaAll,
    CriteriaAny,
    CriteriaNode,
    CriteriaNone,
    CriterionValue,
    InterventionCriterion,
)
from signals_stream.patterns import compile_like, compile_rlike

__all__ = [
    "Predicate",
    "Values",
    "Verdict",
    "compile_criteria",
    "compile_criterion",
    "explain_criteria",
    "same_value",
    "value_test",
]

Values = Mapping[str, Any]
"""Attribute values by ``group:attribute``; a missing name reads as null."""
Predicate = Callable[[Values, Values], bool]
"""``predicate(previous, current) -> met``; only ``changed`` reads ``previous``."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether criteria hold, and why (for previews, tests and logs; not on the hot path)."""

    met: bool
    reason: str


def same_value(a: Any, b: Any) -> bool:
    """Equality for ``changed``: null only equals null, booleans only booleans, NaN itself."""
    if a is None or b is None:
        return a is b
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(a == b) or (isinstance(a, float) and isinstance(b, float) and a != a and b != b)


def value_test(operator: str, value: CriterionValue) -> Callable[[Any], bool]:
    """``test(actual) -> bool`` for a non-null actual value and a value-taking operator."""
    if operator in ("like", "not like", "rlike", "not rlike"):
        compile_pattern = compile_like if operator.removeprefix("not ") == "like" else compile_rlike
        matcher = compile_pattern(str(value))
        if operator.startswith("not "):
            return lambda actual: not matcher(as_text(actual))
        return lambda actual: matcher(as_text(actual))
    if operator == "not in":
        inside = _compare("in", value)
        return lambda actual: not inside(actual)
    return _compare(operator, value)


def compile_criterion(criterion: InterventionCriterion) -> Predicate:
    """Compile one criterion into ``predicate(previous, current)``."""
    name, operator = criterion.attribute, criterion.operator
    if operator == "is null":
        return lambda previous, current: current.get(name) is None
    if operator == "is not null":
        return lambda previous, current: current.get(name) is not None
    if operator == "changed":
        return lambda previous, current: not same_value(previous.get(name), current.get(name))
    test = value_test(operator, criterion.value)

    def predicate(previous: Values, current: Values) -> bool:
        actual = current.get(name)
        return actual is not None and test(actual)  # SQL: a comparison with null is not true

    return predicate


def compile_criteria(node: CriteriaNode) -> Predicate:
    """Compile a criteria tree into one predicate (children short-circuit in order)."""
    if isinstance(node, InterventionCriterion):
        return compile_criterion(node)
    children = tuple(compile_criteria(child) for child in _children(node))
    if len(children) == 1 and isinstance(node, CriteriaAll | CriteriaAny):
        return children[0]
    if isinstance(node, CriteriaAll):

        def every(previous: Values, current: Values) -> bool:
            for child in children:
                if not child(previous, current):
                    return False
            return True

        return every

    def some(previous: Values, current: Values) -> bool:
        for child in children:
            if child(previous, current):
                return True
        return False

    if isinstance(node, CriteriaAny):
        return some
    return lambda previous, current: not some(previous, current)  # `none` is NOR


def explain_criteria(node: CriteriaNode, previous: Values, current: Values) -> Verdict:
    """Evaluate like :func:`compile_criteria` and say which criteria decided.

    Returns:
        The verdict. Its reason lists the deciding criteria with their values, e.g.
        ``my_group:cart_value > 75.0 (value 80)``.
    """
    if isinstance(node, InterventionCriterion):
        met = compile_criterion(node)(previous, current)
        name, operator = node.attribute, node.operator
        if operator == "changed":
            detail = f"{previous.get(name)!r} -> {current.get(name)!r}"
        else:
            detail = f"value {current.get(name)!r}"
        comparand = "" if node.value is None else f" {_show(node.value)}"
        return Verdict(met, f"{name} {operator}{comparand} ({detail})")
    verdicts = [explain_criteria(child, previous, current) for child in _children(node)]
    held = [v for v in verdicts if v.met]
    failed = [v for v in verdicts if not v.met]
    if isinstance(node, CriteriaAll):
        if failed:
            return Verdict(False, f"all: failed {failed[0].reason}")
        return Verdict(True, "all: " + "; ".join(v.reason for v in held))
    if isinstance(node, CriteriaAny):
        if held:
            return Verdict(True, f"any: held {held[0].reason}")
        return Verdict(False, "any: none held: " + "; ".join(v.reason for v in failed))
    if held:
        return Verdict(False, f"none: held {held[0].reason}")
    return Verdict(True, f"none: none of {len(verdicts)} held")


def _children(node: CriteriaAll | CriteriaAny | CriteriaNone) -> tuple[CriteriaNode, ...]:
    if isinstance(node, CriteriaAll):
        return node.all
    if isinstance(node, CriteriaAny):
        return node.any
    return node.none


def _show(value: CriterionValue) -> str:
    return repr(list(value)) if isinstance(value, tuple) else repr(value)
