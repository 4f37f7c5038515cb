"""definition_hash: stable, shared by equivalent definitions, sensitive to what is computed."""

from __future__ import annotations

from typing import Any

import pytest

from signals_stream.definitions import (
    DOMAIN_SESSIONID,
    DOMAIN_USERID,
    Attribute,
    AttributeGroup,
    AttributeKey,
    canonical_definition,
    definition_hash,
)

from .helpers import capture_bodies

PV = {"vendor": "com.snowplowanalytics.snowplow", "name": "page_view", "version": "1-0-0"}
PING = {"vendor": "com.snowplowanalytics.snowplow", "name": "page_ping"}
PRICE = {"type": "entity", "vendor": "com.acme", "name": "product", "major_version": 1,
         "path": "price"}  # fmt: skip
URL = {"type": "atomic", "name": "page_url"}
BASE: dict[str, Any] = {
    "name": "cart", "type": "double", "aggregation": "sum", "property": PRICE,
    "events": [PV, PING], "period": "PT1H",
    "criteria": {"all": [{"property": URL, "operator": "like", "value": "%/cart%"},
                         {"property": URL, "operator": "in", "value": ["a", "b"]}]},
}  # fmt: skip


def h(key: AttributeKey = DOMAIN_USERID, **changes: Any) -> str:
    body = {**BASE, **changes}
    return definition_hash(Attribute.parse({k: v for k, v in body.items() if v is not None}), key)


BASE_HASH = h()

SAME: list[tuple[str, dict[str, Any]]] = [
    ("other name", {"name": "basket_total"}),
    ("description", {"description": "Sum of product prices"}),
    ("default value", {"default_value": 0}),
    ("attribute ttl is a read policy", {"period": None, "ttl": "P7D"}),
    ("period spelled differently", {"period": "PT60M"}),
    ("period in seconds", {"period": 3600}),
    ("events reordered", {"events": [PING, PV]}),
    ("events duplicated", {"events": [PV, PING, PV]}),
    ("$-rooted path", {"property": {**PRICE, "path": "$.price"}}),
    ("explicit default index", {"property": {**PRICE, "index": 0}}),
    ("criteria reordered", {"criteria": {"all": list(reversed(BASE["criteria"]["all"]))}}),
    ("in list reordered", {"criteria": {"all": [
        BASE["criteria"]["all"][0], {**BASE["criteria"]["all"][1], "value": ["b", "a"]}]}}),
]  # fmt: skip
# "attribute ttl" above compares against a lifetime twin, built below.
SAME_LIFETIME = {"period": None}


@pytest.mark.parametrize("changes", [c for _, c in SAME], ids=[i for i, _ in SAME])
def test_hash_ignores(changes: dict[str, Any]) -> None:
    expected = h(**SAME_LIFETIME) if "ttl" in changes else BASE_HASH
    assert h(**changes) == expected


DIFFERENT: list[tuple[str, dict[str, Any]]] = [
    ("aggregation", {"aggregation": "max"}),
    ("type", {"type": "float"}),
    ("property path", {"property": {**PRICE, "path": "unit_price"}}),
    ("entity index", {"property": {**PRICE, "index": 1}}),
    ("entity major version", {"property": {**PRICE, "major_version": 2}}),
    ("entity vs event", {"property": {**PRICE, "type": "event"}}),
    ("events", {"events": [PV]}),
    ("every event", {"events": []}),
    ("event version", {"events": [{**PV, "version": "1-0-1"}, PING]}),
    ("criteria value", {"criteria": {"all": [{**BASE["criteria"]["all"][0], "value": "%/bag%"},
                                             BASE["criteria"]["all"][1]]}}),
    ("criteria operator", {"criteria": {"all": [{**BASE["criteria"]["all"][0], "operator": "="},
                                                BASE["criteria"]["all"][1]]}}),
    ("criteria block", {"criteria": {"any": BASE["criteria"]["all"]}}),
    ("no criteria", {"criteria": None}),
    ("period", {"period": "PT2H"}),
    ("lifetime", {"period": None}),
]  # fmt: skip


@pytest.mark.parametrize("changes", [c for _, c in DIFFERENT], ids=[i for i, _ in DIFFERENT])
def test_hash_changes_with(changes: dict[str, Any]) -> None:
    assert h(**changes) != BASE_HASH


def test_hash_depends_on_the_key() -> None:
    assert h(DOMAIN_SESSIONID) != BASE_HASH
    entity_key = AttributeKey(name="domain_userid", property=URL)
    assert h(entity_key) != BASE_HASH
    # Key metadata is not part of the identity.
    assert h(AttributeKey(name="domain_userid", description="x", owner="o", ttl="P1D")) == BASE_HASH
    assert h(AttributeKey(name="domain_userid", key="domain_userid")) == BASE_HASH


def test_equivalent_spellings_share_state() -> None:
    counter = {"name": "n", "type": "int64", "aggregation": "counter", "events": [PV]}
    assert h(**counter) == h(**counter, property=URL)  # counter ignores its property
    since = {"name": "s", "type": "double", "aggregation": "time_since_last", "time_unit": "min",
             "events": [PV], "property": None, "criteria": None, "period": None}  # fmt: skip
    tstamp = {"type": "atomic", "name": "derived_tstamp"}
    assert h(**since) == h(**{**since, "property": tstamp})
    assert h(**since) == h(**{**since, "time_unit": "h"})  # unit is applied at read time
    assert h(events=[]) == h(events=[{}, PV])  # an empty selector selects everything
    alias = {"type": "atomic", "name": "refr_device_tstamp"}
    canonical = {"type": "atomic", "name": "refr_dvce_tstamp"}
    assert h(aggregation="max", type="timestamp", property=alias) == h(
        aggregation="max", type="timestamp", property=canonical
    )


def test_same_attribute_in_two_groups_and_versions_shares_one_hash() -> None:
    body = next(b for _, b in capture_bodies("attribute_groups") if b["name"] == "my_group")
    v1 = AttributeGroup.parse(body)
    v2 = AttributeGroup.parse({**body, "name": "other", "version": 2, "owner": "x@y.z",
                               "ttl": "P1D", "description": "copy"})  # fmt: skip
    pv = AttributeGroup.parse(next(b for _, b in capture_bodies("attribute_groups")
                                   if b["name"] == "pv_group"))  # fmt: skip
    for a1, a2 in zip(v1.attributes or (), v2.attributes or (), strict=True):
        assert definition_hash(a1, v1.attribute_key) == definition_hash(a2, v2.attribute_key)
    same_count = v1.attribute("page_view_count")
    # pv_group counts page views per page view id, not per session: another state.
    assert definition_hash(same_count, v1.attribute_key) != definition_hash(
        pv.attribute("page_view_count"), pv.attribute_key
    )
    hashes = {definition_hash(a, v1.attribute_key) for a in v1.attributes or ()}
    assert len(hashes) == len(v1.attributes or ())


def test_hash_is_a_stable_storage_key() -> None:
    """Golden value: the hash names stored state, so it must not change between processes or
    releases. If this fails, the canonical form changed: bump HASH_VERSION deliberately."""
    assert BASE_HASH == "e4c57eaf6ff790edcad7e648c1b1dc7b"


def test_canonical_document_lists_the_hashed_fields() -> None:
    doc = canonical_definition(Attribute.parse(BASE), DOMAIN_USERID)
    assert set(doc) == {"v", "key", "aggregation", "type", "property", "events", "criteria",
                        "period_ms"}  # fmt: skip
    assert doc["property"]["path"] == "$.price"
    assert doc["period_ms"] == 3_600_000
    assert doc["key"] == {"name": "domain_userid",
                          "source": {"type": "atomic", "name": "domain_userid",
                                     "date_part": None}}  # fmt: skip
