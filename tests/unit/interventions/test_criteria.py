"""Rule criteria: every operator, SQL null semantics, deep nesting, ``changed``, explanations."""

from __future__ import annotations

from typing import Any

import pytest

from signals_stream.interventions import (
    INTERVENTION_OPERATORS,
    RuleIntervention,
    compile_criteria,
    explain_criteria,
)
from signals_stream.interventions.rule_criteria import same_value

VALUES: dict[str, Any] = {
    "g:count": 21,
    "g:mean": 2.5,
    "g:text": "https://shop.example/product/42?x=1",
    "g:num_text": "9.90",
    "g:flag": True,
    "g:when": "2024-03-15T10:20:30Z",
    "g:tags": ["x", "y"],
    "g:counts": {"a": 2},
    "g:empty": "",
    "g:multi": "a\nb",
    "g:null": None,
}

# (attribute, operator, value, expected); "g:missing" is absent from VALUES (reads as null).
CASES: list[tuple[str, str, Any, bool]] = [
    ("g:count", "=", 21, True), ("g:count", "=", 21.0, True), ("g:count", "=", "21", True),
    ("g:count", "=", 20, False), ("g:text", "=", "https://shop.example/product/42?x=1", True),
    ("g:num_text", "=", 9.9, True), ("g:flag", "=", True, True), ("g:flag", "=", "true", True),
    ("g:flag", "=", 1, False), ("g:when", "=", "2024-03-15T11:20:30+01:00", False),  # strings
    ("g:tags", "=", ["x", "y"], True), ("g:tags", "=", ["y", "x"], False),
    ("g:counts", "=", "a", False), ("g:null", "=", 1, False), ("g:missing", "=", 1, False),
    ("g:count", "!=", 20, True), ("g:count", "!=", 21, False), ("g:text", "!=", 3, True),
    ("g:tags", "!=", ["x"], True), ("g:null", "!=", 1, False), ("g:missing", "!=", "", False),
    ("g:empty", "!=", "", False),
    ("g:count", ">", 20, True), ("g:count", ">", 21, False), ("g:mean", ">", "2", True),
    ("g:text", ">", "https", True), ("g:text", ">", 3, False), ("g:null", ">", 0, False),
    ("g:count", "<", 21.5, True), ("g:count", "<", 21, False), ("g:tags", "<", 3, False),
    ("g:count", ">=", 21, True), ("g:count", ">=", 22, False), ("g:null", ">=", 0, False),
    ("g:count", "<=", 21, True), ("g:mean", "<=", 2.4, False), ("g:missing", "<=", 0, False),
    ("g:text", "like", "%/product/%", True),
    ("g:text", "like", "https://shop.example/_roduct%", True),
    ("g:text", "like", "%/PRODUCT/%", False), ("g:text", "like", "/product/%", False),
    ("g:count", "like", "2_", True), ("g:tags", "like", '["x"%', True),
    ("g:multi", "like", "a%b", True),
    ("g:null", "like", "%", False),
    ("g:text", "not like", "%/product/%", False), ("g:text", "not like", "%/cart/%", True),
    ("g:null", "not like", "x", False), ("g:missing", "not like", "x", False),
    ("g:text", "rlike", r"/product/\d+", True), ("g:text", "rlike", r"^/product", False),
    ("g:text", "rlike", "(?i)PRODUCT", True), ("g:text", "rlike", "cart|product", True),
    ("g:count", "rlike", "^2[0-9]$", True), ("g:flag", "rlike", "^true$", True),
    ("g:multi", "rlike", "a.b", False), ("g:multi", "rlike", "(?s)a.b", True),
    ("g:null", "rlike", ".*", False),
    ("g:text", "not rlike", "checkout", True), ("g:text", "not rlike", r"\?x=1$", False),
    ("g:null", "not rlike", "x", False),
    ("g:text", "in", ["a", "https://shop.example/product/42?x=1"], True),
    ("g:text", "in", ["a"], False), ("g:count", "in", [20, 21], True),
    ("g:count", "in", ["21"], True), ("g:flag", "in", [True], True),
    ("g:null", "in", [1], False), ("g:tags", "in", ["x"], False),
    ("g:count", "not in", [1, 2], True), ("g:count", "not in", [21], False),
    ("g:null", "not in", [1], False), ("g:missing", "not in", ["a"], False),
    ("g:null", "is null", None, True), ("g:missing", "is null", None, True),
    ("g:empty", "is null", None, False), ("g:count", "is null", None, False),
    ("g:null", "is not null", None, False), ("g:empty", "is not null", None, True),
    ("g:counts", "is not null", None, True),
]  # fmt: skip


def _criterion(attribute: str, operator: str, value: Any) -> dict[str, Any]:
    found: dict[str, Any] = {"attribute": attribute, "operator": operator}
    if value is not None:
        found["value"] = value
    return found


def _rule(criteria: dict[str, Any]) -> RuleIntervention:
    return RuleIntervention.parse({"name": "r", "criteria": criteria})


@pytest.mark.parametrize(("attribute", "operator", "value", "expected"), CASES)
def test_operator(attribute: str, operator: str, value: Any, expected: bool) -> None:
    rule = _rule(_criterion(attribute, operator, value))
    assert compile_criteria(rule.criteria)({}, VALUES) is expected
    assert explain_criteria(rule.criteria, {}, VALUES).met is expected


def test_every_value_operator_is_covered() -> None:
    covered = {op for _, op, _, _ in CASES}
    assert covered | {"changed"} == set(INTERVENTION_OPERATORS)


@pytest.mark.parametrize(
    ("previous", "current", "expected"),
    [
        ({}, {"g:a": 1}, True),  # unset -> first value
        ({"g:a": None}, {"g:a": 0}, True),
        ({"g:a": 1}, {"g:a": 2}, True),
        ({"g:a": 2}, {"g:a": None}, True),  # expired / reset to null
        ({"g:a": 1}, {"g:a": 1}, False),
        ({"g:a": 1}, {"g:a": 1.0}, False),  # int/float of one value: same
        ({"g:a": 1}, {"g:a": True}, True),  # booleans are not numbers
        ({"g:a": ["x"]}, {"g:a": ["x"]}, False),
        ({"g:a": ["x"]}, {"g:a": ["x", "y"]}, True),
        ({"g:a": {"k": 1}}, {"g:a": {"k": 2}}, True),
        ({"g:a": float("nan")}, {"g:a": float("nan")}, False),
        ({}, {}, False),
        ({"g:b": 1}, {"g:b": 2}, False),  # another attribute changed
    ],
)
def test_changed_compares_previous_and_current(
    previous: dict[str, Any], current: dict[str, Any], expected: bool
) -> None:
    predicate = compile_criteria(_rule({"attribute": "g:a", "operator": "changed"}).criteria)
    assert predicate(previous, current) is expected


def test_changed_combined_inside_all() -> None:
    predicate = compile_criteria(_rule({"all": [
        {"attribute": "g:page", "operator": "changed"},
        {"attribute": "g:count", "operator": ">", "value": 3},
    ]}).criteria)  # fmt: skip
    assert predicate({"g:page": "/a", "g:count": 5}, {"g:page": "/b", "g:count": 5})
    assert not predicate({"g:page": "/a", "g:count": 5}, {"g:page": "/a", "g:count": 6})
    assert not predicate({"g:page": "/a", "g:count": 1}, {"g:page": "/b", "g:count": 2})


def test_same_value_edge_cases() -> None:
    assert same_value(None, None) and not same_value(None, 0) and not same_value("", None)
    assert same_value(2, 2.0) and not same_value(False, 0)


A_TRUE = {"attribute": "g:count", "operator": ">", "value": 1}
A_FALSE = {"attribute": "g:count", "operator": "<", "value": 1}


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ({"all": [A_TRUE, A_TRUE]}, True),
        ({"all": [A_TRUE, A_FALSE]}, False),
        ({"any": [A_FALSE, A_TRUE]}, True),
        ({"any": [A_FALSE, A_FALSE]}, False),
        ({"none": [A_FALSE, A_FALSE]}, True),  # NOR
        ({"none": [A_FALSE, A_TRUE]}, False),
        ({"none": [{"none": [A_TRUE]}]}, True),  # double negation
        ({"all": [A_TRUE, {"any": [A_FALSE, {"none": [A_FALSE]}]}]}, True),
        ({"all": [A_TRUE, {"any": [A_FALSE, {"none": [A_TRUE]}]}]}, False),
        ({"any": [{"all": [A_TRUE, A_FALSE]}, {"all": [A_TRUE, {"none": [A_FALSE]}]}]}, True),
    ],
)
def test_nesting(criteria: dict[str, Any], expected: bool) -> None:
    rule = _rule(criteria)
    assert compile_criteria(rule.criteria)({}, VALUES) is expected
    assert explain_criteria(rule.criteria, {}, VALUES).met is expected


def test_deep_alternating_nesting_matches_a_direct_reading() -> None:
    # depth 30: none(any(all(none(...)))) over a leaf; compare with plain Python logic.
    tree: dict[str, Any] = A_TRUE
    expected = True
    for depth in range(30):
        kind = ("all", "any", "none")[depth % 3]
        tree = {kind: [tree, A_FALSE] if kind == "any" else [tree]}
        expected = (not expected) if kind == "none" else expected
    assert compile_criteria(_rule(tree).criteria)({}, VALUES) is expected


def test_explain_names_the_deciding_criteria() -> None:
    rule = _rule({"all": [
        {"attribute": "g:count", "operator": ">", "value": 20},
        {"any": [{"attribute": "g:mean", "operator": ">=", "value": 3},
                 {"attribute": "g:text", "operator": "is not null"}]},
    ]})  # fmt: skip
    verdict = explain_criteria(rule.criteria, {}, VALUES)
    assert verdict.met
    assert verdict.reason == (
        "all: g:count > 20 (value 21); any: held g:text is not null "
        "(value 'https://shop.example/product/42?x=1')"
    )
    failed = explain_criteria(rule.criteria, {}, {**VALUES, "g:count": 3})
    assert not failed.met and failed.reason == "all: failed g:count > 20 (value 3)"
    changed = explain_criteria(_rule({"attribute": "g:a", "operator": "changed"}).criteria,
                               {"g:a": 1}, {"g:a": 2})  # fmt: skip
    assert changed.met and changed.reason == "g:a changed (1 -> 2)"
    excluded = explain_criteria(_rule({"none": [A_TRUE]}).criteria, {}, VALUES)
    assert not excluded.met and excluded.reason == "none: held g:count > 1 (value 21)"
