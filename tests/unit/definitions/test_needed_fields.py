"""needed_fields: what the repartition must carry, checked against real projections."""

from __future__ import annotations

import pytest

from signals_stream.definitions import (
    Attribute,
    AttributeGroup,
    AttributeKey,
    NeededFields,
    compile_group,
    needed_fields,
)
from signals_stream.events.parse import Event, Projection

from .helpers import capture_bodies, make_event, tsv_events

GROUPS = [AttributeGroup.parse(b) for _, b in capture_bodies("attribute_groups")]
MY_GROUP = next(g for g in GROUPS if g.name == "my_group")
PV_GROUP = next(g for g in GROUPS if g.name == "pv_group")
ECOM = "com_snowplowanalytics_snowplow_ecommerce"


def test_needed_fields_of_the_captured_groups() -> None:
    needs = needed_fields(groups=[MY_GROUP, PV_GROUP])
    assert needs.atomic == {
        "domain_sessionid",  # key of my_group
        "event_vendor", "event_name", "event_version",  # event selectors
        "page_url",  # last_url and its criteria
        "derived_tstamp",  # mins_since_pv, peak_hour
        "geo_city", "geo_country",  # full_name
    }  # fmt: skip
    assert needs.entities == {
        f"contexts_{ECOM}_product_1",  # cart_value
        "contexts_com_snowplowanalytics_snowplow_web_page_1",  # pv_group's key
    }
    assert needs.unstruct == {f"unstruct_event_{ECOM}_snowplow_ecommerce_action_1"}  # criteria
    assert needs == compile_group(MY_GROUP).needs | compile_group(PV_GROUP).needs


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [
        ({"name": "n", "type": "int64", "aggregation": "counter", "events": []}, NeededFields()),
        ({"name": "n", "type": "int64", "aggregation": "counter", "events": [],
          "property": {"type": "atomic", "name": "page_url"}}, NeededFields()),
        ({"name": "s", "type": "double", "aggregation": "time_since_first", "time_unit": "s"},
         NeededFields(atomic=frozenset({"derived_tstamp"}))),
        ({"name": "n", "type": "int64", "aggregation": "counter",
          "events": [{"event_specification_id": "s"}]},
         NeededFields(entities=frozenset(
             {"contexts_com_snowplowanalytics_snowplow_event_specification_1"}))),
    ],
)  # fmt: skip
def test_needed_fields_of_one_attribute(attribute: dict, expected: NeededFields) -> None:
    assert needed_fields(attributes=[Attribute.parse(attribute)]) == expected


def test_needed_fields_of_keys() -> None:
    keys = [
        AttributeKey(name="user_id"),
        AttributeKey.parse(capture_bodies("attribute_keys")[0][1]),
    ]
    assert needed_fields(keys=keys) == NeededFields(
        atomic=frozenset({"user_id"}),
        entities=frozenset({"contexts_com_snowplowanalytics_snowplow_web_page_1"}),
    )


def _outputs(group, event: Event) -> list:  # type: ignore[no-untyped-def]
    compiled = compile_group(group)
    rows = [compiled.key.key_value(event)]
    for attribute in compiled.attributes:
        rows.append((attribute.matches_event(event), attribute.passes_criteria(event),
                     attribute.value(event)))  # fmt: skip
    return rows


EVENTS = (
    tsv_events("kafka-live-viewer-profiles/micro.1.tsv")
    + tsv_events("snowplow-rdb-loader/widerow-json.input-events.tsv")
    + (
        make_event(
            event_vendor="com.snowplowanalytics.snowplow.ecommerce",
            event_name="snowplow_ecommerce_action", event_version="1-0-2",
            domain_sessionid="s-1", geo_city="Paris", geo_country="FR",
            page_url="https://shop/product/1", derived_tstamp="2024-03-15T10:20:30.123Z",
            unstruct=("iglu:com.snowplowanalytics.snowplow.ecommerce/snowplow_ecommerce_action/"
                      "jsonschema/1-0-2", {"type": "add_to_cart"}),
            entities=[("iglu:com.snowplowanalytics.snowplow.ecommerce/product/jsonschema/1-0-0",
                       {"id": "p", "price": 3.5}),
                      ("iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0",
                       {"id": "wp-1"})],
        ),
    )
)  # fmt: skip


@pytest.mark.parametrize("group", [MY_GROUP, PV_GROUP], ids=lambda g: g.name)
def test_projection_of_needed_fields_computes_the_same(group: AttributeGroup) -> None:
    """What needed_fields reports is enough: the projected event gives identical results."""
    needs = compile_group(group).needs
    projection = Projection(
        atomic=needs.atomic, entity_keys=needs.entities, unstruct_keys=needs.unstruct
    )
    empty = Projection()
    differs_without = 0
    for event in EVENTS:
        expected = _outputs(group, event)
        assert _outputs(group, Event.from_projection(event.project(projection))) == expected
        differs_without += _outputs(group, Event.from_projection(event.project(empty))) != expected
    assert differs_without > 0  # the projection really carries something the results need
