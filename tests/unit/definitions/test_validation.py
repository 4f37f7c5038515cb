"""Rules the SDK does not enforce: each rejects with a DefinitionError naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from signals_stream.definitions import Attribute, AttributeGroup, AttributeKey, Criterion
from signals_stream.errors import DefinitionError

from .helpers import capture_bodies

PV = {"vendor": "com.snowplowanalytics.snowplow", "name": "page_view", "version": "1-0-0"}
URL = {"type": "atomic", "name": "page_url"}
TSTAMP = {"type": "atomic", "name": "derived_tstamp"}
PRICE = {"type": "entity", "vendor": "com.acme", "name": "product", "major_version": 1,
         "path": "price"}  # fmt: skip


def attr(**fields: Any) -> dict[str, Any]:
    base = {"name": "a", "type": "string", "events": [PV], "aggregation": "last", "property": URL}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def calc(operation: str, *props: dict, **extra: Any) -> dict[str, Any]:
    return {"type": "calculated", "operation": operation, "properties": list(props), **extra}


INVALID: list[tuple[str, dict[str, Any], str]] = [
    # period / ttl
    ("period with ttl", attr(period="PT1H", ttl="P1D"), r"ttl: cannot be combined with period"),
    ("zero period", attr(period="PT0S"), r"period: .*positive"),
    ("bad duration", attr(period="1 hour"), r"period: .*ISO 8601"),
    # time_since_*
    ("time_since without unit",
     attr(type="double", aggregation="time_since_last", property=None),
     r"time_unit: required for 'time_since_last'"),
    ("time_since other property",
     attr(type="double", aggregation="time_since_first", time_unit="h", property=URL),
     r"property: 'time_since_first' always uses derived_tstamp"),
    ("time_since with date_part",
     attr(type="double", aggregation="time_since_last", time_unit="h",
          property={**TSTAMP, "date_part": "hour_of_day"}),
     r"property: 'time_since_last' always uses derived_tstamp"),
    ("time_since int type",
     attr(type="int64", aggregation="time_since_last", time_unit="s", property=None),
     r"type: 'int64' cannot hold the result of 'time_since_last'"),
    ("time_unit elsewhere", attr(time_unit="s"), r"time_unit: only valid for time_since_\*"),
    ("bad time_unit",
     attr(type="double", aggregation="time_since_last", time_unit="ms", property=None),
     r"time_unit: Input should be 's', 'min', 'h' or 'd'"),
    # date_part
    ("date_part on non-timestamp", attr(property={**URL, "date_part": "active_day"}),
     r"property\.atomic: date_part: 'active_day' needs a date-time column"),
    ("date_part with sum", attr(type="int64", aggregation="sum",
                                property={**TSTAMP, "date_part": "hour_of_day"}),
     r"property\.date_part: not allowed with aggregation 'sum'"),
    ("date_part with mean on entity", attr(type="double", aggregation="mean",
                                            property={**PRICE, "date_part": "day_of_week"}),
     r"property\.date_part: not allowed with aggregation 'mean'"),
    ("date_part extract as string", attr(type="string", aggregation="most_frequent",
                                         property={**TSTAMP, "date_part": "hour_of_day"}),
     r"type: date_part 'hour_of_day' with 'most_frequent' gives int32 or int64"),
    ("date_part truncate as int", attr(type="int32", aggregation="first",
                                       property={**TSTAMP, "date_part": "active_week"}),
     r"type: date_part 'active_week' with 'first' gives string, not 'int32'"),
    ("date_part unique_list", attr(type="int32", aggregation="unique_list",
                                   property={**TSTAMP, "date_part": "month_of_year"}),
     r"gives int32_list or int64_list"),
    ("unknown date_part", attr(property={**TSTAMP, "date_part": "minute"}),
     r"property\.atomic\.date_part: Input should be"),
    # calculated properties
    ("nested calculated",
     attr(property=calc("concat", URL, calc("coalesce", URL))),
     r"property\.calculated: .*properties: calculated properties cannot be nested"),
    ("concat with one input", attr(property=calc("concat", URL)),
     r"properties: 'concat' needs at least 2 properties, got 1"),
    ("sum with one input", attr(type="double", aggregation="sum", property=calc("sum", PRICE)),
     r"properties: 'sum' needs at least 2 properties"),
    ("no inputs", attr(property=calc("coalesce")),
     r"property\.calculated\.properties: .*at least 1 item"),
    ("separator outside concat", attr(property=calc("coalesce", URL, URL, separator="-")),
     r"separator: only valid for 'concat'"),
    ("unknown operation", attr(property=calc("avg", URL, URL)),
     r"property\.calculated\.operation: Input should be"),
    # type / aggregation
    ("sum into string", attr(aggregation="sum", property=PRICE),
     r"type: 'string' cannot hold the result of 'sum'"),
    ("mean into int", attr(type="int32", aggregation="mean", property=PRICE),
     r"type: 'int32' cannot hold the result of 'mean'"),
    ("counter into bool", attr(type="bool", aggregation="counter", property=None),
     r"type: 'bool' cannot hold the result of 'counter'"),
    ("unique_list into scalar", attr(aggregation="unique_list"),
     r"type: 'string' cannot hold the result of 'unique_list'"),
    ("category_count into list", attr(type="string_list", aggregation="category_count"),
     r"type: 'string_list' cannot hold the result of 'category_count'"),
    ("last into dict", attr(type="dict"), r"cannot hold the result of 'last'"),
    ("unknown type", attr(type="uuid"), r"type: Input should be"),
    ("unknown aggregation", attr(aggregation="count"), r"aggregation: Input should be"),
    ("missing property", attr(property=None), r"property: required for aggregation 'last'"),
    # default_value
    ("string default on int", attr(type="int32", aggregation="counter", default_value="0"),
     r"default_value: '0' does not fit type 'int32'"),
    ("bool default on number", attr(type="double", aggregation="sum", property=PRICE,
                                    default_value=True), r"default_value: True does not fit"),
    ("scalar default on list", attr(type="string_list", aggregation="unique_list",
                                    default_value="x"), r"default_value: 'x' does not fit"),
    # property shapes
    ("unknown atomic column", attr(property={"type": "atomic", "name": "page"}),
     r"property\.atomic\.name: .*'page' is not an enriched-event column"),
    ("JSON column as atomic", attr(property={"type": "atomic", "name": "contexts"}),
     r"'contexts' holds self-describing JSON"),
    ("missing property type", attr(property={"name": "page_url"}),
     r"property: property 'type' must be"),
    ("quoted path", attr(property={**PRICE, "path": "$['price']"}),
     r"property\.entity\.path: .*bracket-quoted keys"),
    ("whole-document path", attr(property={**PRICE, "path": "$"}),
     r"path '\$' \(the whole document\)"),
    ("wildcard path", attr(property={**PRICE, "path": "items[*].price"}),
     r"property\.entity\.path: .*unsupported syntax"),
    ("negative entity index", attr(property={**PRICE, "index": -1}),
     r"property\.entity\.index: Input should be greater than or equal to 0"),
    ("major version 0", attr(property={**PRICE, "major_version": 0}),
     r"property\.entity\.major_version: Input should be greater than 0"),
    # events
    ("spec id with name", attr(events=[{"event_specification_id": "s1", "name": "x"}]),
     r"events\.0: event_specification_id: cannot be combined"),
    ("bad event version", attr(events=[{"name": "x", "version": "1.0.0"}]),
     r"events\.0\.version: String should match pattern"),
    ("bad attribute name", attr(name="page views"), r"name: String should match pattern"),
    # criteria values
    ("like without string",
     attr(criteria={"all": [{"property": URL, "operator": "like", "value": 3}]}),
     r"criteria\.all\.0: value: 'like' needs a string pattern"),
    ("in without list",
     attr(criteria={"any": [{"property": URL, "operator": "in", "value": "a"}]}),
     r"criteria\.any\.0: value: 'in' needs a non-empty list"),
    ("in with empty list",
     attr(criteria={"any": [{"property": URL, "operator": "in", "value": []}]}),
     r"value: 'in' needs a non-empty list"),
    ("is null with value",
     attr(criteria={"all": [{"property": URL, "operator": "is null", "value": "x"}]}),
     r"value: must be omitted for 'is null'"),
    ("comparison without value",
     attr(criteria={"all": [{"property": URL, "operator": "="}]}),
     r"value: required for '='"),
    ("mixed list",
     attr(criteria={"any": [{"property": URL, "operator": "in", "value": ["a", 1]}]}),
     r"value: list items must all be strings, numbers or booleans"),
    ("mixed list equality",
     attr(criteria={"any": [{"property": URL, "operator": "=", "value": [True, 1]}]}),
     r"value: list items must all be"),
    ("ordering a boolean",
     attr(criteria={"all": [{"property": URL, "operator": ">", "value": True}]}),
     r"value: '>' cannot compare booleans"),
    ("ordering a list",
     attr(criteria={"all": [{"property": URL, "operator": "<", "value": [1, 2]}]}),
     r"value: a list is only valid with 'in', '=' or '!='"),
    ("unknown operator",
     attr(criteria={"all": [{"property": URL, "operator": "not in", "value": ["a"]}]}),
     r"criteria\.all\.0\.operator: Input should be"),
    ("nested criteria",
     attr(criteria={"all": [{"any": [{"property": URL, "operator": "is null"}]}]}),
     r"criteria\.all\.0\.property: Field required"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "message"), [(b, m) for _, b, m in INVALID],
                         ids=[i for i, _, _ in INVALID])  # fmt: skip
def test_invalid_attribute_is_rejected(body: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionError, match=message) as info:
        Attribute.parse(body)
    assert info.value.http_status == 422


VALID: list[tuple[str, dict[str, Any]]] = [
    ("counter ignores a property", attr(type="int64", aggregation="counter")),
    ("time_since with explicit derived_tstamp",
     attr(type="float", aggregation="time_since_first", time_unit="d", property=TSTAMP)),
    ("date_part with category_count", attr(type="dict", aggregation="category_count",
                                           property={**TSTAMP, "date_part": "day_of_week"})),
    ("date_part with approx_count_distinct",
     attr(type="int64", aggregation="approx_count_distinct",
          property={**TSTAMP, "date_part": "active_day"})),
    ("date_part on an event property", attr(property={**PRICE, "type": "event",
                                                      "date_part": "active_month"})),
    ("date_part in a calculated leaf",
     attr(property=calc("concat", {**TSTAMP, "date_part": "active_day"}, URL))),
    ("coalesce with one input", attr(property=calc("coalesce", URL))),
    ("fifty inputs", attr(property=calc("concat", *[URL] * 50))),
    ("min of timestamps", attr(type="timestamp", aggregation="min", property=TSTAMP)),
    ("ttl without period", attr(ttl="P1Y")),
    ("events omitted", {k: v for k, v in attr().items() if k != "events"}),
    ("spec id alone", attr(events=[{"event_specification_id": "spec-1"}])),
    ("list default on list type", attr(type="string_list", aggregation="unique_list",
                                       default_value=["a"])),
    ("list equality", attr(criteria={"all": [{"property": URL, "operator": "=",
                                              "value": ["a", "b"]}]})),
]  # fmt: skip


@pytest.mark.parametrize("body", [b for _, b in VALID], ids=[i for i, _ in VALID])
def test_valid_attribute_is_accepted(body: dict[str, Any]) -> None:
    attribute = Attribute.parse(body)
    assert Attribute.parse(attribute.to_wire()) == attribute


def test_fifty_one_inputs_are_too_many() -> None:
    with pytest.raises(DefinitionError, match=r"properties: .*at most 50 items"):
        Attribute.parse(attr(property=calc("concat", *[URL] * 51)))


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(DefinitionError) as info:
        Attribute.parse({"name": "a b", "type": "int32", "events": [], "aggregation": "nope"})
    assert "name: String should match" in str(info.value)
    assert "aggregation: Input should be" in str(info.value)


_, GROUP = capture_bodies("attribute_groups")[0]
GROUP_INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("stream group without attributes", {**GROUP, "attributes": []},
     r"attributes: a stream group needs at least one attribute"),
    ("stream group with fields", {**GROUP, "fields": [{"name": "LTV", "type": "double"}]},
     r"fields: only valid for warehouse groups"),
    ("duplicate attribute names", {**GROUP, "attributes": GROUP["attributes"][:1] * 2},
     r"attributes: duplicate names page_view_count"),
    ("warehouse key in a stream group",
     {**GROUP, "attribute_key": {"name": "CUSTOMER_ID", "external_column": "CUSTOMER_ID"}},
     r"attribute_key: 'CUSTOMER_ID' is a warehouse column"),
    ("warehouse group without source",
     {**GROUP, "offline": True, "attributes": None, "fields": [{"name": "x", "type": "bool"}]},
     r"batch_source: required for a warehouse group"),
    ("version 0", {**GROUP, "version": 0}, r"version: Input should be greater than or equal to 1"),
    ("ttl of an attribute inside a group",
     {**GROUP, "attributes": [dict(GROUP["attributes"][0], ttl="P1D")]},
     r"attributes\.0: ttl: cannot be combined with period"),
    ("owner too long", {**GROUP, "owner": "x" * 256}, r"owner: String should have at most 255"),
    ("missing key", {k: v for k, v in GROUP.items() if k != "attribute_key"},
     r"attribute_key: Field required"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "message"), [(b, m) for _, b, m in GROUP_INVALID],
                         ids=[i for i, _, _ in GROUP_INVALID])  # fmt: skip
def test_invalid_group_is_rejected(body: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        AttributeGroup.parse(body)


KEY_INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("external_column differs from name", {"name": "a", "external_column": "b"},
     r"external_column: must equal the name 'a'"),
    ("date_part on a key",
     {"name": "k", "property": {**TSTAMP, "date_part": "active_day"}},
     r"property\.date_part: not allowed on an attribute key"),
    ("deprecated key not a column", {"name": "k", "key": "customer"},
     r"key: .*'customer' is not an enriched-event column"),
    ("key and property", {"name": "k", "key": "user_id", "property": URL},
     r"key: deprecated; cannot be combined with property"),
    ("calculated key", {"name": "k", "property": calc("concat", URL, URL)},
     r"property: property 'type' must be 'atomic', 'event' or 'entity'"),
    ("no name and nothing to derive it from", {"key": "user_id"}, r"name: required unless"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "message"), [(b, m) for _, b, m in KEY_INVALID],
                         ids=[i for i, _, _ in KEY_INVALID])  # fmt: skip
def test_invalid_key_is_rejected(body: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        AttributeKey.parse(body)


def test_criterion_is_checked_on_its_own() -> None:
    with pytest.raises(DefinitionError, match=r"invalid Criterion: value: 'in' needs"):
        Criterion(property={"type": "atomic", "name": "app_id"}, operator="in", value="x")


def test_calculated_properties_must_be_a_list_not_a_crash() -> None:
    # Found by fuzzing the API: a number where the list goes raised TypeError (a 500).
    body = {
        "name": "k",
        "property": {"type": "atomic", "name": "app_id"},
    }
    AttributeKey.parse(body)  # the control: valid
    group = {
        "name": "g",
        "attribute_key": {"name": "domain_userid"},
        "attributes": [
            {
                "name": "a",
                "type": "string",
                "events": [],
                "aggregation": "last",
                "property": {"type": "calculated", "operation": "concat", "properties": 7},
            }
        ],
    }
    with pytest.raises(DefinitionError, match=r"attributes\.0\.property"):
        AttributeGroup.parse(group)


def test_a_null_online_means_the_default_so_bodies_round_trip() -> None:
    # Found by fuzzing: `online: null` was kept, dropped by to_wire, and read back as True.
    body = {**capture_bodies("attribute_groups")[0][1], "online": None}
    group = AttributeGroup.parse(body)
    assert group.online is True
    assert AttributeGroup.parse(group.to_wire()) == group
