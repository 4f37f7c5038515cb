"""Edge-triggered firing, the fired set, deterministic ids and the delivered payload."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from signals_stream.interventions import (
    Evaluation,
    InterventionInstance,
    build_index,
    build_instance,
    build_instances,
    evaluate,
    intervention_id,
    payload_attributes,
    prune_fired,
    render_value,
)
from signals_stream.interventions.matcher import ResolvedRule

from .helpers import FakeGroup, rule

S, U = "domain_sessionid", "domain_userid"
GROUPS = {
    ("shop", 1): FakeGroup(S, ("clicks", "cart_value", "page")),
    ("shop", 2): FakeGroup(S, ("clicks", "cart_value", "page", "country")),
    ("extra", 1): FakeGroup(S, ("clicks", "segment", "scores")),
}


def resolved(criteria: Any, name: str = "r", version: int = 1, **fields: Any) -> ResolvedRule:
    index = build_index([rule(criteria, name=name, version=version, **fields)], GROUPS)
    assert not index.skipped, index.skipped
    return index.rules[name]


CLICKS_OVER_20 = {"attribute": "shop:clicks", "operator": ">", "value": 20}


def run(rules: list[ResolvedRule], values: list[dict[str, Any]]) -> list[list[str]]:
    """Feed successive values; the names fired at each step (the fired set carried along)."""
    fired: frozenset[str] = frozenset()
    previous: dict[str, Any] = {}
    out = []
    for step, current in enumerate(values):
        result = evaluate(rules, previous, current, fired, event_id=f"e{step}",
                          event_time_ms=step, triggered_at_ms=1_000 + step)  # fmt: skip
        out.append([f.name for f in result.firings])
        fired, previous = result.fired, current
    return out


def test_threshold_fires_once_when_crossed_rearms_and_fires_again() -> None:
    r = resolved(CLICKS_OVER_20)
    clicks = [19, 20, 21, 22, 30, 5, 6, 21, 25]
    got = run([r], [{"shop:clicks": c} for c in clicks])
    # fires on the 21st click, not the 22nd; re-arms when it drops to 5; fires again at 21
    assert got == [[], [], ["r"], [], [], [], [], ["r"], []]


def test_first_value_over_threshold_fires_and_null_rearms() -> None:
    r = resolved(CLICKS_OVER_20)
    assert run([r], [{"shop:clicks": 50}, {}, {"shop:clicks": 40}]) == [["r"], [], ["r"]]


def test_fired_set_holds_rules_currently_met() -> None:
    r = resolved(CLICKS_OVER_20)
    met = evaluate([r], {"shop:clicks": 3}, {"shop:clicks": 30}, (), event_id="e",
                   event_time_ms=0, triggered_at_ms=0)  # fmt: skip
    assert met.fired == {"r:1"} and len(met.firings) == 1
    still = evaluate([r], {"shop:clicks": 30}, {"shop:clicks": 31}, met.fired, event_id="f",
                     event_time_ms=0, triggered_at_ms=0)  # fmt: skip
    assert still == Evaluation(firings=(), fired=frozenset({"r:1"}))
    dropped = evaluate([r], {"shop:clicks": 31}, {"shop:clicks": 1}, still.fired, event_id="g",
                       event_time_ms=0, triggered_at_ms=0)  # fmt: skip
    assert dropped == Evaluation(firings=(), fired=frozenset())


def test_unobserved_lapse_rearms() -> None:
    # Latched at the last update, but the previous reading (a window or TTL that lapsed since)
    # no longer meets the criteria: the crossing is new, so it fires.
    r = resolved(CLICKS_OVER_20)
    result = evaluate([r], {"shop:clicks": 0}, {"shop:clicks": 21}, {"r:1"}, event_id="e",
                      event_time_ms=0, triggered_at_ms=0)  # fmt: skip
    assert [f.name for f in result.firings] == ["r"] and result.fired == {"r:1"}


def test_rule_published_while_already_met_does_not_fire_until_it_recrosses() -> None:
    r = resolved(CLICKS_OVER_20, version=2)  # no latch for this version yet
    assert run([r], [{"shop:clicks": 30}]) == [["r"]]  # a first value over it fires
    result = evaluate([r], {"shop:clicks": 30}, {"shop:clicks": 31}, {"r:1"}, event_id="e",
                      event_time_ms=0, triggered_at_ms=0)  # fmt: skip
    assert result.firings == ()
    assert result.fired == {"r:2"}  # the v1 latch is replaced by v2's


def test_recheck_without_update_uses_the_fired_set() -> None:
    r = resolved(CLICKS_OVER_20)
    c = resolved({"attribute": "shop:page", "operator": "changed"}, name="c")
    latched = evaluate([r, c], None, {"shop:clicks": 30, "shop:page": "/a"}, {"r:1"},
                       event_id="t", event_time_ms=0, triggered_at_ms=0)  # fmt: skip
    assert latched.firings == () and latched.fired == {"r:1"}  # nothing changed without an update
    armed = evaluate([r], None, {"shop:clicks": 30}, (), event_id="t", event_time_ms=0,
                     triggered_at_ms=0)  # fmt: skip
    assert [f.name for f in armed.firings] == ["r"]


def test_changed_fires_on_every_change_including_the_first() -> None:
    c = resolved({"attribute": "shop:page", "operator": "changed"}, name="c")
    pages = [None, "/a", "/a", "/b", "/a", "/a", None, "/c"]
    got = run([c], [{"shop:page": p} for p in pages])
    assert got == [[], ["c"], [], ["c"], ["c"], [], ["c"], ["c"]]


def test_changed_inside_all_and_keeps_no_latch() -> None:
    c = resolved({"all": [{"attribute": "shop:page", "operator": "changed"}, CLICKS_OVER_20]},
                 name="c")  # fmt: skip
    steps = [
        {"shop:page": page, "shop:clicks": clicks}
        for page, clicks in (("/a", 1), ("/b", 21), ("/c", 22), ("/c", 23))
    ]
    assert run([c], steps) == [[], ["c"], ["c"], []]
    result = evaluate([c], steps[0], steps[1], {"c:1"}, event_id="e", event_time_ms=0,
                      triggered_at_ms=0)  # fmt: skip
    assert result.fired == frozenset()


def test_only_given_rules_are_evaluated_and_other_state_is_kept() -> None:
    r = resolved(CLICKS_OVER_20)
    result = evaluate([r], {"shop:clicks": 1}, {"shop:clicks": 21}, {"other:3", "r:0"},
                      event_id="e", event_time_ms=0, triggered_at_ms=0)  # fmt: skip
    assert result.fired == {"other:3", "r:1"}  # r's older version latch dropped, others kept
    assert prune_fired(result.fired, {"r:1"}) == {"r:1"}


def test_several_rules_fire_in_name_order_with_distinct_ids() -> None:
    rules = [resolved(CLICKS_OVER_20, name="zeta"), resolved(CLICKS_OVER_20, name="alpha")]
    result = evaluate(rules, {}, {"shop:clicks": 25}, (), event_id="ev-1", event_time_ms=7,
                      triggered_at_ms=9)  # fmt: skip
    assert [f.name for f in result.firings] == ["alpha", "zeta"]
    assert len({f.intervention_id for f in result.firings}) == 2
    first = result.firings[0]
    assert (first.event_id, first.event_time_ms, first.triggered_at_ms) == ("ev-1", 7, 9)
    assert first.triggering == {"shop:clicks": 25}


def test_intervention_ids_are_deterministic_uuid5() -> None:
    event = "3e1c0a4e-5f7b-4c1e-9a51-0c3b2f1d9e77"
    a = intervention_id(event, "cart_abandon", 1)
    assert a == intervention_id(event, "cart_abandon", 1)
    assert uuid.UUID(a).version == 5
    others = {
        intervention_id("other-event", "cart_abandon", 1),
        intervention_id(event, "cart", 1),
        intervention_id(event, "cart_abandon", 2),
    }
    assert a not in others and len(others) == 3
    # A replay of the same update produces the same firing id.
    r = resolved(CLICKS_OVER_20)
    twice = [evaluate([r], {}, {"shop:clicks": 21}, (), event_id="e9", event_time_ms=1,
                      triggered_at_ms=t).firings[0].intervention_id for t in (1, 2)]  # fmt: skip
    assert twice == [intervention_id("e9", "r", 1)] * 2


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("x", "x"), ("", ""), (True, "true"), (False, "false"), (0, "0"), (-12, "-12"),
        (2**63, "9223372036854775808"), (250.0, "250.0"), (0.1, "0.1"), (1e16, "1e+16"),
        (-2.5e-7, "-2.5e-07"), (math.nan, "NaN"), (math.inf, "Infinity"), (-math.inf, "-Infinity"),
        (["b", "a", 1], '["b","a",1]'), ({"z": 1, "a": [True, None]}, '{"a":[true,null],"z":1}'),
        ({1: "x"}, '{"1":"x"}'), ((1, 2), "[1,2]"), ([], "[]"), ({}, "{}"),
        (datetime(2024, 3, 15, 10, 20, 30, tzinfo=UTC), "2024-03-15T10:20:30Z"),
        (None, None),
    ],
)  # fmt: skip
def test_render_value(value: Any, text: str | None) -> None:
    assert render_value(value) == text


def _firing(**fields: Any):  # the single firing of a rule over shop:clicks / shop:page
    r = resolved({"all": [CLICKS_OVER_20, {"attribute": "shop:page", "operator": "is null"}]},
                 name="cart", version=2, **fields)  # fmt: skip
    [firing] = evaluate([r], {}, {"shop:clicks": 21, "shop:page": None}, (), event_id="ev",
                        event_time_ms=5, triggered_at_ms=6).firings  # fmt: skip
    return firing


def test_payload_names_values_and_collisions() -> None:
    firing = _firing(payload_attribute_groups=[{"name": "extra", "version": 1},
                                                {"name": "shop", "version": 1}])  # fmt: skip
    values = {
        ("extra", 1): {"clicks": 99, "segment": "gold", "scores": [1.5, 2]},
        ("shop", 1): {"clicks": 21, "cart_value": 80.0, "page": "/late"},
    }
    assert payload_attributes(firing, values) == {
        "clicks": "21",  # triggering first; a null triggering value (page) is left out
        "extra:clicks": "99",  # taken by another group: qualified
        "segment": "gold",
        "scores": "[1.5,2]",
        "cart_value": "80.0",
        "page": "/late",  # same group as the triggering null page: bare name, first value
    }
    assert payload_attributes(firing, {}) == {"clicks": "21"}


def test_instances_one_per_target_sharing_the_id() -> None:
    firing = _firing(target_attribute_keys=[{"name": U}, {"name": S}, {"name": "user_id"}])
    instances = build_instances(firing, target_ids={S: "s-1", U: "u-1", "user_id": None},
                                payload_values={})  # fmt: skip
    assert instances == [
        {"intervention_id": intervention_id("ev", "cart", 2), "name": "cart", "version": 2,
         "target_attribute_key": {"name": U, "id": "u-1"}, "attributes": {"clicks": "21"},
         "triggered_at_ms": 6, "event_id": "ev", "event_time_ms": 5},
        {"intervention_id": intervention_id("ev", "cart", 2), "name": "cart", "version": 2,
         "target_attribute_key": {"name": S, "id": "s-1"}, "attributes": {"clicks": "21"},
         "triggered_at_ms": 6, "event_id": "ev", "event_time_ms": 5},
    ]  # fmt: skip
    assert build_instances(firing, target_ids={}, payload_values={}) == []
    for instance in instances:
        assert InterventionInstance.parse(instance).to_wire() == instance


def test_instances_validate_as_the_sdk_model() -> None:
    sdk = pytest.importorskip("snowplow_signals.models.model")
    [instance] = build_instances(_firing(), target_ids={S: "abc-123"}, payload_values={})
    parsed = sdk.InterventionInstance.model_validate(instance)  # extras ignored by the SDK
    assert parsed.attributes == {"clicks": "21"}
    assert parsed.target_attribute_key.id == "abc-123"


def test_build_instance_for_a_direct_push_omits_metadata() -> None:
    instance = build_instance(intervention_id="i", name="direct", version=1, target_name=S,
                              target_id="abc-123", attributes={"k": "v"})  # fmt: skip
    assert instance == {"intervention_id": "i", "name": "direct", "version": 1,
                        "target_attribute_key": {"name": S, "id": "abc-123"},
                        "attributes": {"k": "v"}}  # fmt: skip
