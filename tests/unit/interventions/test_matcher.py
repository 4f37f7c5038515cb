"""Rule resolution (latest published group version with the attribute) and the attribute index."""

from __future__ import annotations

from typing import Any

import pytest

from signals_stream.definitions import AttributeGroup
from signals_stream.engine import Catalog
from signals_stream.errors import DefinitionError
from signals_stream.interventions import (
    RuleIntervention,
    build_index,
    resolve_attribute,
    resolve_rule,
)

from .helpers import CART_ABANDON, FakeGroup, capture_requests, rule

S, U = "domain_sessionid", "domain_userid"
GROUPS = {
    ("shop", 1): FakeGroup(S, ("cart_value", "page_views", "last_url")),
    ("shop", 2): FakeGroup(S, ("cart_value", "page_views", "last_url", "coupon")),
    ("shop", 3): FakeGroup(S, ("cart_value", "page_views")),  # v3 drops last_url and coupon
    ("shop", 4): FakeGroup(S, ("cart_value",)),  # v4 drops page_views
    ("user", 1): FakeGroup(U, ("lifetime_value", "country")),
    ("other", 1): FakeGroup(S, ("clicks",)),
}


def gt(attribute: str, value: Any = 0) -> dict[str, Any]:
    return {"attribute": attribute, "operator": ">", "value": value}


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("shop:cart_value", 4),  # the latest
        ("shop:page_views", 3),  # v4 dropped it: v3 keeps being used
        ("shop:coupon", 2),
        ("shop:last_url", 2),
        ("user:country", 1),
    ],
)
def test_attribute_resolves_to_latest_published_version_having_it(name: str, version: int) -> None:
    ref = resolve_attribute(name, GROUPS)
    group, attribute = name.split(":")
    assert (ref.name, ref.group, ref.version, ref.attribute) == (name, group, version, attribute)
    assert ref.qualified == f"{group}_v{version}:{attribute}"


def test_unresolvable_attributes_say_why() -> None:
    with pytest.raises(DefinitionError, match="'nope' is not published"):
        resolve_attribute("nope:x", GROUPS)
    with pytest.raises(DefinitionError, match=r"no published version of 'shop' \(4, 3, 2, 1\)"):
        resolve_attribute("shop:gone", GROUPS)


def test_rule_resolution_key_targets_and_payload() -> None:
    shop_v1 = {"name": "shop", "version": 1}
    criteria = {"all": [gt("shop:cart_value"), gt("shop:page_views"), gt("shop:cart_value", 9)]}
    resolved = resolve_rule(rule(criteria, payload_attribute_groups=[shop_v1, shop_v1]), GROUPS)
    assert [(r.name, r.version) for r in resolved.references] == [
        ("shop:cart_value", 4),
        ("shop:page_views", 3),
    ]
    assert resolved.key_name == S
    assert resolved.targets == (S,)  # default: the key of the referenced groups
    assert resolved.payload_groups == (("shop", 1),)
    assert not resolved.uses_changed
    assert (resolved.name, resolved.version, resolved.key) == ("r", 1, "r:1")


def test_explicit_targets_are_kept_in_order() -> None:
    resolved = resolve_rule(
        rule(gt("shop:cart_value"), target_attribute_keys=[{"name": U}, {"name": S}, {"name": U}]),
        GROUPS,
    )
    assert resolved.targets == (U, S)


def test_changed_rules_are_flagged() -> None:
    resolved = resolve_rule(
        rule({"all": [{"attribute": "shop:coupon", "operator": "changed"}]}), GROUPS
    )
    assert resolved.uses_changed


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"criteria": {"all": [gt("shop:cart_value"), gt("user:country")]}},
         "attributes of different attribute keys: shop:cart_value (domain_sessionid), "
         "user:country (domain_userid)"),
        ({"criteria": gt("shop:cart_value"),
          "payload_attribute_groups": [{"name": "shop", "version": 9}]},
         "payload_attribute_groups: shop version 9 is not published"),
        ({"criteria": gt("shop:cart_value"),
          "payload_attribute_groups": [{"name": "user", "version": 1}]},
         "payload_attribute_groups: user version 1 has key 'domain_userid', the criteria "
         "'domain_sessionid'"),
    ],
)  # fmt: skip
def test_rules_that_cannot_be_evaluated_in_one_row_are_rejected(fields: dict, message: str) -> None:
    with pytest.raises(DefinitionError) as info:
        resolve_rule(rule(**fields), GROUPS)
    assert message in str(info.value)


def test_index_keeps_the_highest_published_version_and_reports_skips() -> None:
    rules = [
        rule(gt("shop:cart_value"), name="a", version=1),
        rule(gt("shop:page_views"), name="a", version=3),
        RuleIntervention(name="a", version=4, is_published=False, criteria=gt("other:clicks")),
        rule(gt("shop:cart_value"), name="b", version=2),
        rule(gt("shop:missing"), name="b", version=5),  # latest fails: not replaced by v2
        RuleIntervention(name="c", criteria=gt("shop:cart_value")),  # unpublished
    ]
    index = build_index(rules, GROUPS)
    assert {name: r.version for name, r in index.rules.items()} == {"a": 3}
    assert list(index.skipped) == ["b:5"] and "shop:missing" in index.skipped["b:5"]
    assert index.active_keys == {"a:3"}


def _many_rules(n: int) -> list[RuleIntervention]:
    # n rules on other:clicks; one on shop:cart_value; one on coupon or cart; one user rule.
    found = [rule(gt("other:clicks", i), name=f"click_{i:04d}") for i in range(n)]
    found.append(rule(gt("shop:cart_value", 75), name="cart"))
    found.append(rule({"any": [gt("shop:coupon"), gt("shop:cart_value", 500)]}, name="coupon"))
    found.append(rule(gt("user:lifetime_value", 100), name="vip"))
    return found


def test_index_selects_only_rules_referencing_changed_attributes() -> None:
    index = build_index(_many_rules(1000), GROUPS)
    assert [r.name for r in index.relevant(["shop:cart_value"])] == ["cart", "coupon"]
    assert [r.name for r in index.relevant(["shop:coupon"])] == ["coupon"]
    assert [r.name for r in index.relevant(["shop:coupon", "shop:cart_value"])] == [
        "cart",
        "coupon",
    ]
    assert index.relevant(["shop:page_views", "unknown:x"]) == ()
    assert len(index.relevant(["other:clicks"])) == 1000
    assert [r.name for r in index.relevant(["user:lifetime_value"])] == ["vip"]


def test_index_lists_watched_attributes_per_key() -> None:
    index = build_index(_many_rules(3), GROUPS)
    assert index.watched(S) == {"other:clicks", "shop:cart_value", "shop:coupon"}
    assert index.watched(U) == {"user:lifetime_value"}
    assert index.watched("network_userid") == frozenset()
    ref = index.reference("shop:coupon")
    assert ref is not None and (ref.group, ref.version) == ("shop", 2)
    assert index.reference("shop:page_views") is None


def test_the_capture_rule_resolves_against_the_real_engine_catalog() -> None:
    """The lead adapts ``engine.PublishedGroup``; this checks the Protocol fits the real thing."""
    [(_, body), *_] = capture_requests("/api/v1/registry/attribute_groups/")
    catalog = Catalog.build([AttributeGroup.parse(body)])
    groups = {
        key: FakeGroup(published.key_name, tuple(a.name for a in published.attributes))
        for key, published in catalog.groups.items()
    }
    cart = RuleIntervention.parse(CART_ABANDON)
    index = build_index([cart], groups)
    assert index.skipped == {}
    resolved = index.rules["cart_abandon"]
    assert [r.qualified for r in resolved.references] == [
        "my_group_v1:cart_value",
        "my_group_v1:page_view_count",
        "my_group_v1:last_url",
    ]
    assert resolved.key_name == "domain_sessionid" and resolved.targets == ("domain_userid",)
    assert resolved.payload_groups == (("my_group", 1),)
