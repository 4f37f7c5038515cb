"""RuleIntervention / InterventionInstance: the SDK's bodies round-trip; bad ones name the field."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest

from signals_stream.errors import DefinitionError
from signals_stream.interventions import (
    INTERVENTION_OPERATORS,
    InterventionCriterion,
    InterventionInstance,
    RuleIntervention,
)
from signals_stream.interventions.definitions import MAX_CRITERIA_DEPTH, iter_criteria

from .helpers import CART_ABANDON, capture_requests, capture_result

RULE_BODIES = capture_requests("/api/v1/registry/interventions/")


def test_capture_has_the_intervention_bodies() -> None:
    methods = sorted(label.rsplit(":", 1)[1] for label, _ in RULE_BODIES)
    assert methods == ["POST", "POST", "PUT"]  # publish, unpublish (400 then PUT)


@pytest.mark.parametrize(("label", "body"), RULE_BODIES, ids=[label for label, _ in RULE_BODIES])
def test_rule_round_trips_byte_for_byte(label: str, body: dict[str, Any]) -> None:
    rule = RuleIntervention.parse(body)
    assert orjson.dumps(rule.to_wire()) == orjson.dumps(body)  # key order and 75.0 vs 3 kept
    assert RuleIntervention.parse(orjson.dumps(body)) == rule
    assert RuleIntervention.parse(rule.to_wire()) == rule


def test_rule_exposes_key_and_referenced_attributes() -> None:
    rule = RuleIntervention.parse(CART_ABANDON)
    assert rule.key == "cart_abandon:1"
    assert rule.attributes == (
        "my_group:cart_value",
        "my_group:page_view_count",
        "my_group:last_url",
    )
    paths = [(path, blocks) for path, blocks, _ in iter_criteria(rule.criteria)]
    assert paths == [
        ("criteria.all.0", ("all",)),
        ("criteria.all.1.any.0", ("all", "any")),
        ("criteria.all.1.any.1", ("all", "any")),
    ]


def test_server_response_with_nulls_and_single_criterion_parses() -> None:
    got = capture_result("interventions.get")  # description/payload groups null, bare criterion
    rule = RuleIntervention.parse(got)
    assert isinstance(rule.criteria, InterventionCriterion)
    assert rule.to_wire() == {k: v for k, v in got.items() if v is not None}


def test_defaults_nulls_and_unknown_top_level_fields() -> None:
    body = {"name": "x", "version": None, "is_published": None, "future": {"a": 1},
            "criteria": {"attribute": "g:a", "operator": "changed"}}  # fmt: skip
    rule = RuleIntervention.parse(body)
    assert (rule.version, rule.is_published) == (1, False)
    assert rule.to_wire()["future"] == {"a": 1}  # echoed, as for attribute groups


def test_every_operator_is_accepted() -> None:
    values: dict[str, Any] = {"in": [1, 2], "not in": ["a"], "like": "%x%", "not like": "a_",
                              "rlike": "^a+$", "not rlike": "b|c"}  # fmt: skip
    for op in INTERVENTION_OPERATORS:
        criterion: dict[str, Any] = {"attribute": "g:a", "operator": op}
        if op not in ("is null", "is not null", "changed"):
            criterion["value"] = values.get(op, 3)
        rule = RuleIntervention.parse({"name": "x", "criteria": criterion})
        assert rule.to_wire()["criteria"] == criterion
    assert len(INTERVENTION_OPERATORS) == 15


def test_deep_nesting_round_trips() -> None:
    leaf = {"attribute": "g:a", "operator": "=", "value": "x"}
    tree: dict[str, Any] = leaf
    for depth in range(MAX_CRITERIA_DEPTH):
        tree = {("all", "any", "none")[depth % 3]: [tree, leaf]}
    rule = RuleIntervention.parse({"name": "x", "criteria": tree})
    assert rule.to_wire()["criteria"] == tree
    with pytest.raises(DefinitionError, match=f"nested deeper than {MAX_CRITERIA_DEPTH}"):
        RuleIntervention.parse({"name": "x", "criteria": {"all": [tree]}})


CHANGED = {"attribute": "g:c", "operator": "changed"}
OTHER = {"attribute": "g:a", "operator": ">", "value": 1}


@pytest.mark.parametrize(
    ("criteria", "bad_path"),
    [
        (CHANGED, None),
        ({"all": [CHANGED, OTHER]}, None),
        ({"all": [{"all": [OTHER, CHANGED]}]}, None),
        ({"all": [OTHER, {"any": [OTHER, CHANGED]}]}, "criteria.all.1.any.1"),
        ({"any": [CHANGED]}, "criteria.any.0"),
        ({"none": [CHANGED]}, "criteria.none.0"),
        ({"none": [{"all": [CHANGED]}]}, "criteria.none.0.all.0"),  # under none, even via all
        ({"all": [{"any": [{"all": [OTHER, CHANGED]}]}]}, "criteria.all.0.any.0.all.1"),
    ],
)
def test_changed_only_alone_or_inside_all(criteria: dict[str, Any], bad_path: str | None) -> None:
    body = {"name": "x", "criteria": criteria}
    if bad_path is None:
        assert RuleIntervention.parse(body).to_wire()["criteria"] == criteria
        return
    with pytest.raises(DefinitionError) as info:
        RuleIntervention.parse(body)
    assert f"{bad_path}: 'changed' is only allowed alone or inside 'all'" in str(info.value)


@pytest.mark.parametrize(
    ("criteria", "message"),
    [
        (
            {"all": [{"attribute": "g:a", "operator": ">"}]},
            "criteria.all.0: value: required for '>'",
        ),
        ({"attribute": "g:a", "operator": "is null", "value": 1}, "value: must be omitted"),
        ({"attribute": "g:a", "operator": "changed", "value": 1}, "value: must be omitted"),
        ({"attribute": "g:a", "operator": "in", "value": []}, "'in' needs a non-empty list"),
        ({"attribute": "g:a", "operator": "not in", "value": 3}, "'not in' needs a non-empty list"),
        ({"attribute": "g:a", "operator": "in", "value": [1, "a"]}, "list items must all be"),
        ({"attribute": "g:a", "operator": ">", "value": [1]}, "a list is only valid with"),
        ({"attribute": "g:a", "operator": "<", "value": True}, "cannot compare booleans"),
        ({"attribute": "g:a", "operator": "like", "value": 3}, "'like' needs a string pattern"),
        ({"attribute": "g:a", "operator": "rlike", "value": "(a)\\1"}, "value: backreferences"),
        ({"attribute": "g:a", "operator": "not rlike", "value": "(?=a)"}, "value: lookaround"),
        ({"attribute": "g:a", "operator": "rlike", "value": "a" * 513}, "value: pattern longer"),
        ({"attribute": "g:a", "operator": "~", "value": 1}, "criteria.operator: Input should be"),
        ({"attribute": "ga", "operator": "=", "value": 1}, "criteria.attribute: String should"),
        ({"attribute": "g:a:b", "operator": "=", "value": 1}, "criteria.attribute: String should"),
        ({"all": [{"any": []}]}, "criteria.all.0.any: needs at least one condition"),
        ({"all": [OTHER], "any": [OTHER]}, "criteria.any: Extra inputs are not permitted"),
        ({"attribute": "g:a", "operator": "=", "value": 1, "x": 1}, "criteria.x: Extra inputs"),
        ({"all": [OTHER, 3]}, "criteria.all.1: Input should be a valid dictionary"),
    ],
)
def test_invalid_criteria_name_the_field(criteria: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionError) as info:
        RuleIntervention.parse({"name": "x", "criteria": criteria})
    assert str(info.value).startswith("invalid RuleIntervention: ")
    assert message in str(info.value)
    assert not re.search(r"<(all|any|none|criterion)>", str(info.value))  # no union tags


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "bad-name"}, "name: String should match pattern"),
        ({"version": 0}, "version: Input should be greater than or equal to 1"),
        ({"owner": "x" * 256}, "owner: String should have at most 255"),
        ({"target_attribute_keys": [{"name": ""}]}, "target_attribute_keys.0.name"),
        (
            {"payload_attribute_groups": [{"name": "g", "version": 0}]},
            "payload_attribute_groups.0.version",
        ),
        ({"criteria": None}, "criteria: "),
    ],
)
def test_invalid_rule_fields_are_named(change: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionError, match="invalid RuleIntervention") as info:
        RuleIntervention.parse({**CART_ABANDON, **change})
    assert message in str(info.value)
    with pytest.raises(DefinitionError):  # construction raises the same way
        RuleIntervention(**{**CART_ABANDON, **change})


def test_rules_are_frozen_and_compared_by_value() -> None:
    a, b = RuleIntervention.parse(CART_ABANDON), RuleIntervention.parse(dict(CART_ABANDON))
    assert a == b and hash(a) == hash(b)
    with pytest.raises(Exception, match="frozen"):
        a.name = "other"  # type: ignore[misc]


def test_direct_push_body_from_the_capture() -> None:
    [(_, body)] = capture_requests("/api/v1/interventions")
    instance = InterventionInstance.parse(body)
    assert instance.to_wire() == body == {"attributes": {"k": "v"}, "name": "direct", "version": 1}


def test_delivered_instances_from_the_capture_parse() -> None:
    for delivered in capture_result("pull_interventions"):
        instance = InterventionInstance.parse(delivered)
        assert instance.target_attribute_key is not None
        assert instance.to_wire() == delivered


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"name": "d", "version": 1, "attributes": {"n": 3}},
            "attributes.n: Input should be a valid string",
        ),
        ({"name": "d", "version": 1, "attributes": {"n": None}}, "attributes.n"),
        ({"name": "", "version": 1}, "name: String should have at least 1"),
        ({"name": "d"}, "version: Field required"),
    ],
)
def test_direct_push_rejects_non_string_attributes(body: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionError, match="invalid InterventionInstance") as info:
        InterventionInstance.parse(body)
    assert message in str(info.value)
