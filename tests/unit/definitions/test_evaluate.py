"""Compiled properties, selectors and keys over real parsed events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from signals_stream.definitions import (
    Attribute,
    AttributeGroup,
    AttributeKey,
    EventSelector,
    compile_attribute,
    compile_events,
    compile_group,
    compile_key,
    compile_property,
)
from signals_stream.definitions.properties import (
    AtomicProperty,
    CalculatedProperty,
    EntityProperty,
    EventProperty,
)
from signals_stream.errors import DefinitionError

from .helpers import capture_bodies, make_event, tsv_events

MICRO = tsv_events("kafka-live-viewer-profiles/micro.1.tsv")
PAGE_VIEW = MICRO[0]  # 2024-11-16T13:33:21.957Z, a Saturday
AD_QUARTILE = next(e for e in MICRO if e.unstruct_data == {"percentProgress": 25})
WIDEROW = tsv_events("snowplow-rdb-loader/widerow-json.input-events.tsv")
LINK_CLICK = next(e for e in WIDEROW if e.event_name == "link_click")
TWO_SESSIONS = next(
    e for e in WIDEROW
    if len(e.entities("contexts_com_snowplowanalytics_snowplow_client_session_1")) > 1
)  # fmt: skip
PARQUET = next(
    e
    for e in tsv_events("snowplow-rdb-loader/input-events-custom-unstruct.tsv")
    if e.event_version == "1-2-0"
)
SP = "com.snowplowanalytics.snowplow"


def prop(**fields: Any) -> Any:
    kinds = {"atomic": AtomicProperty, "event": EventProperty, "entity": EntityProperty,
             "calculated": CalculatedProperty}  # fmt: skip
    return kinds[fields["type"]](**fields)


def entity(name: str, path: str, vendor: str = SP, major: int = 1, **extra: Any) -> dict:
    return {"type": "entity", "vendor": vendor, "name": name, "major_version": major,
            "path": path, **extra}  # fmt: skip


def event_prop(name: str, path: str, vendor: str = SP, major: int = 1, **extra: Any) -> dict:
    return {"type": "event", "vendor": vendor, "name": name, "major_version": major,
            "path": path, **extra}  # fmt: skip


MEDIA = "com.snowplowanalytics.snowplow.media"
PROPERTY_CASES: list[tuple[str, dict, Any, Any]] = [
    ("atomic string", {"type": "atomic", "name": "page_url"}, PAGE_VIEW,
     "http://localhost:3000/"),
    ("atomic typed int", {"type": "atomic", "name": "dvce_screenwidth"}, PAGE_VIEW, 1600),
    ("atomic typed bool", {"type": "atomic", "name": "br_cookies"}, PAGE_VIEW, True),
    ("atomic timestamp", {"type": "atomic", "name": "derived_tstamp"}, PAGE_VIEW,
     datetime(2024, 11, 16, 13, 33, 21, 957000, tzinfo=UTC)),
    ("atomic empty is null", {"type": "atomic", "name": "user_id"}, PAGE_VIEW, None),
    ("atomic alias", {"type": "atomic", "name": "refr_device_tstamp"}, PAGE_VIEW, None),
    ("entity field", entity("web_page", "id"), PAGE_VIEW, "e08f471e-3cb8-4023-91a6-805f23ba3412"),
    ("entity $-rooted", entity("web_page", "$.id"), PAGE_VIEW,
     "e08f471e-3cb8-4023-91a6-805f23ba3412"),
    ("entity other major is absent", entity("media_player", "label", SP, 1), AD_QUARTILE, None),
    ("entity major 2", entity("media_player", "label", SP, 2), AD_QUARTILE, "Bugs Bunny"),
    ("entity other vendor is absent", entity("media_player", "label", MEDIA, 2), AD_QUARTILE,
     None),
    ("entity float", entity("media_player", "duration", SP, 2), AD_QUARTILE, 596.474195),
    ("entity index 0", entity("client_session", "storageMechanism"), TWO_SESSIONS, "SQLITE"),
    ("entity index 1", entity("client_session", "storageMechanism", index=1), TWO_SESSIONS,
     "COOKIE_3"),
    ("entity index out of range", entity("client_session", "userId", index=2), TWO_SESSIONS,
     None),
    ("entity missing on event", entity("client_session", "userId"), PAGE_VIEW, None),
    ("event field", event_prop("link_click", "targetUrl"), LINK_CLICK, "https://www.g.tr/yNu9ame"),
    ("event field of another event", event_prop("link_click", "targetUrl"), PAGE_VIEW, None),
    ("event nested", event_prop("parquet_test_a", "$.a_field.c_field.d_field"), PARQUET, "m"),
    ("event list index", event_prop("parquet_test_a", "i_field[1].c_field"), PARQUET, 79102),
    ("event whole object", event_prop("parquet_test_a", "l_field"), PARQUET,
     {"m_field": "6", "n_field": 6324, "o_field": False}),
    ("event other major", event_prop("parquet_test_a", "a_field", major=2), PARQUET, None),
    ("event int", event_prop("ad_quartile_event", "percentProgress", MEDIA), AD_QUARTILE, 25),
]  # fmt: skip


@pytest.mark.parametrize(("definition", "event", "expected"),
                         [(d, e, x) for _, d, e, x in PROPERTY_CASES],
                         ids=[i for i, *_ in PROPERTY_CASES])  # fmt: skip
def test_property_value(definition: dict, event: Any, expected: Any) -> None:
    assert compile_property(prop(**definition))(event) == expected


TS = {"type": "atomic", "name": "derived_tstamp"}
DATE_PARTS = [
    ("hour_of_day", PAGE_VIEW, 13),
    ("day_of_week", PAGE_VIEW, 6),
    ("month_of_year", PAGE_VIEW, 11),
    ("active_day", PAGE_VIEW, "2024-11-16"),
    ("active_week", PAGE_VIEW, "2024-11-11"),
    ("active_month", PAGE_VIEW, "2024-11-01"),
]


@pytest.mark.parametrize(("part", "event", "expected"), DATE_PARTS)
def test_date_part_on_atomic_timestamp(part: str, event: Any, expected: Any) -> None:
    assert compile_property(prop(**TS, date_part=part))(event) == expected


@pytest.mark.parametrize(
    ("raw", "part", "expected"),
    [
        ("2022-03-30T09:46:31.159Z", "hour_of_day", 9),
        ("2022-03-30T09:46:31.159Z", "day_of_week", 3),
        ("2024-03-17T23:30:00-02:00", "active_day", "2024-03-18"),  # converted to UTC first
        ("2024-03-17T23:30:00-02:00", "day_of_week", 1),
        ("2024-03-17", "active_week", "2024-03-11"),  # a Sunday belongs to Monday's week
        ("2024-03-17T10:00:00", "hour_of_day", 10),  # naive = UTC
        ("not a date", "hour_of_day", None),
        (12345, "hour_of_day", None),
        (None, "hour_of_day", None),
    ],
)
def test_date_part_on_schema_field(raw: Any, part: str, expected: Any) -> None:
    event = make_event(unstruct=("iglu:com.acme/sent/jsonschema/1-0-0", {"at": raw}))
    getter = compile_property(prop(**event_prop("sent", "at", "com.acme"), date_part=part))
    assert getter(event) == expected


def test_date_part_on_real_entity_field() -> None:
    started = entity("media_session", "startedAt", date_part="active_day")
    assert compile_property(prop(**started))(AD_QUARTILE) == "2024-11-16"
    hour = event_prop("parquet_test_a", "h_field", date_part="hour_of_day")
    assert compile_property(prop(**hour))(PARQUET) == 9


def calc(operation: str, *props: dict, **extra: Any) -> dict:
    return {"type": "calculated", "operation": operation, "properties": list(props), **extra}


ACME = "iglu:com.acme/item/jsonschema/1-0-0"
ITEM = make_event(
    entities=[(ACME, {"price": 2.5, "qty": 4, "name": "pen", "color": None, "sale": True,
                      "tags": ["a"]})],
    geo_city="Paris", geo_country="FR", page_title="Home",
)  # fmt: skip


def item(path: str) -> dict:
    return entity("item", path, "com.acme")


CITY, COUNTRY = {"type": "atomic", "name": "geo_city"}, {"type": "atomic", "name": "geo_country"}
NULL = {"type": "atomic", "name": "user_id"}
CALCULATED: list[tuple[str, dict, Any]] = [
    ("concat with separator", calc("concat", CITY, COUNTRY, separator=" "), "Paris FR"),
    ("concat default separator", calc("concat", CITY, COUNTRY), "ParisFR"),
    ("concat skips nulls", calc("concat", CITY, NULL, COUNTRY, separator="/"), "Paris/FR"),
    ("concat all nulls", calc("concat", NULL, item("color")), None),
    ("concat numbers and bools", calc("concat", item("qty"), item("price"), item("sale"),
                                      separator=","), "4,2.5,true"),
    ("concat a list as JSON", calc("concat", item("tags"), CITY), '["a"]Paris'),
    ("sum", calc("sum", item("price"), item("qty")), 6.5),
    ("product", calc("product", item("price"), item("qty")), 10.0),
    ("min", calc("min", item("price"), item("qty")), 2.5),
    ("max", calc("max", item("price"), item("qty")), 4),
    ("sum null in null out", calc("sum", item("price"), item("color")), None),
    ("sum of a string is null", calc("sum", item("price"), item("name")), None),
    ("sum of a bool is null", calc("sum", item("qty"), item("sale")), None),
    ("coalesce first non-null", calc("coalesce", NULL, item("color"), CITY, COUNTRY), "Paris"),
    ("coalesce keeps falsy", calc("coalesce", NULL, item("sale")), True),
    ("coalesce all null", calc("coalesce", NULL), None),
    ("coalesce with date_part", calc("coalesce", NULL, {**TS, "date_part": "hour_of_day"}),
     None),
]  # fmt: skip


@pytest.mark.parametrize(("definition", "expected"), [(d, x) for _, d, x in CALCULATED],
                         ids=[i for i, *_ in CALCULATED])  # fmt: skip
def test_calculated_property(definition: dict, expected: Any) -> None:
    assert compile_property(prop(**definition))(ITEM) == expected


def test_concat_with_date_part_on_real_event() -> None:
    definition = calc("concat", {**TS, "date_part": "active_day"}, {"type": "atomic",
                      "name": "page_urlpath"}, separator="|")  # fmt: skip
    assert compile_property(prop(**definition))(PAGE_VIEW) == "2024-11-16|/"


def test_entities_from_enrichments_are_found() -> None:
    yauaa = "iglu:nl.basjes/yauaa_context/jsonschema/1-0-4"
    event = make_event(entities=[(ACME, {"x": 1})], derived=[(yauaa, {"agentName": "Chrome"})])
    agent = entity("yauaa_context", "agentName", "nl.basjes")
    assert compile_property(prop(**agent))(event) == "Chrome"


def sel(**fields: Any) -> EventSelector:
    return EventSelector(**fields)


SELECTORS: list[tuple[str, list[EventSelector], Any, bool]] = [
    ("no selectors = every event", [], LINK_CLICK, True),
    ("empty selector = every event", [sel()], LINK_CLICK, True),
    ("exact", [sel(vendor=SP, name="page_view", version="1-0-0")], PAGE_VIEW, True),
    ("exact other event", [sel(vendor=SP, name="page_view", version="1-0-0")], LINK_CLICK, False),
    ("any version", [sel(vendor=SP, name="link_click")], LINK_CLICK, True),
    ("wrong version", [sel(vendor=SP, name="link_click", version="1-0-0")], LINK_CLICK, False),
    ("vendor only", [sel(vendor=MEDIA)], AD_QUARTILE, True),
    ("vendor only, other vendor", [sel(vendor=MEDIA)], PAGE_VIEW, False),
    ("name only", [sel(name="ad_quartile_event")], AD_QUARTILE, True),
    ("version only", [sel(version="1-0-1")], LINK_CLICK, True),
    ("name and version, any vendor", [sel(name="page_view", version="1-0-0")], PAGE_VIEW, True),
    ("vendor is exact, not a prefix", [sel(vendor=SP)], AD_QUARTILE, False),
    ("second selector matches", [sel(name="x"), sel(name="link_click")], LINK_CLICK, True),
    ("structured event", [sel(vendor="com.google.analytics", name="event", version="1-0-0")],
     next(e for e in tsv_events("snowplow-rdb-loader/input-events-custom-contexts.tsv")
          if e.event_name == "event"), True),
]  # fmt: skip


@pytest.mark.parametrize(("selectors", "event", "expected"),
                         [(s, e, x) for _, s, e, x in SELECTORS],
                         ids=[i for i, *_ in SELECTORS])  # fmt: skip
def test_event_selectors(selectors: list[EventSelector], event: Any, expected: bool) -> None:
    assert compile_events(selectors)(event) is expected


def test_event_specification_selector() -> None:
    spec = "iglu:com.snowplowanalytics.snowplow/event_specification/jsonschema/1-0-2"
    tagged = make_event(entities=[(spec, {"id": "spec-42", "name": "Add to cart"})])
    match = compile_events([sel(event_specification_id="spec-42")])
    assert match(tagged) is True
    assert compile_events([sel(event_specification_id="spec-7")])(tagged) is False
    assert match(PAGE_VIEW) is False


KEYS: list[tuple[str, AttributeKey, Any, str | None]] = [
    ("domain_userid", AttributeKey(name="domain_userid"), PAGE_VIEW,
     "143f9cb9-3db9-4e99-8d67-c8aea075d190"),
    ("domain_sessionid", AttributeKey(name="domain_sessionid", key="domain_sessionid"), PAGE_VIEW,
     "8ccfeb07-c10f-4e7a-9932-f24443264899"),
    ("network_userid", AttributeKey(name="network_userid"), PAGE_VIEW,
     "d8aae409-b64d-40c0-99d7-5324fcb27735"),
    ("user_id empty", AttributeKey(name="user_id"), PAGE_VIEW, None),
    ("user_id", AttributeKey(name="user_id"), LINK_CLICK, "ada.blackjack@iglu.com"),
    ("deprecated alias", AttributeKey(name="user", key="domain_userid"), PAGE_VIEW,
     "143f9cb9-3db9-4e99-8d67-c8aea075d190"),
    ("entity key", AttributeKey.parse(capture_bodies("attribute_keys")[0][1]), PAGE_VIEW,
     "e08f471e-3cb8-4023-91a6-805f23ba3412"),
    ("entity key absent", AttributeKey.parse(capture_bodies("attribute_keys")[0][1]),
     PARQUET, None),
    ("numeric id", AttributeKey(name="n", property=item("qty")), ITEM, "4"),
    ("bool id", AttributeKey(name="b", property=item("sale")), ITEM, "true"),
    ("object is no id", AttributeKey(name="o", property=item("tags")), ITEM, None),
    ("atomic custom key", AttributeKey(name="city", property={"type": "atomic",
                                                              "name": "geo_city"}), ITEM, "Paris"),
    ("event key", AttributeKey(name="target", property=event_prop("link_click", "targetUrl")),
     LINK_CLICK, "https://www.g.tr/yNu9ame"),
]  # fmt: skip


@pytest.mark.parametrize(("key", "event", "expected"), [(k, e, x) for _, k, e, x in KEYS],
                         ids=[i for i, *_ in KEYS])  # fmt: skip
def test_key_value(key: AttributeKey, event: Any, expected: str | None) -> None:
    compiled = compile_key(key)
    assert compiled.name == key.name
    assert compiled.key_value(event) == expected


def test_empty_string_id_is_no_id() -> None:
    event = make_event(entities=[(ACME, {"id": ""})])
    assert compile_key(AttributeKey(name="i", property=item("id"))).key_value(event) is None


@pytest.mark.parametrize(
    "key",
    [AttributeKey(name="pageview_id"), AttributeKey(name="CRM", external_column="CRM")],
)
def test_key_without_event_source_cannot_compile(key: AttributeKey) -> None:
    with pytest.raises(DefinitionError, match="has no event source"):
        compile_key(key)


def test_compiled_group_from_capture_on_real_events() -> None:
    body = next(b for _, b in capture_bodies("attribute_groups") if b["name"] == "my_group")
    group = compile_group(AttributeGroup.parse(body))
    by_name = {a.name: a for a in group.attributes}
    assert group.key.key_value(PAGE_VIEW) == "8ccfeb07-c10f-4e7a-9932-f24443264899"

    pv = by_name["page_view_count"]
    assert (pv.aggregation, pv.period_ms, pv.value(PAGE_VIEW)) == ("counter", 900_000, None)
    assert [e.event_name for e in MICRO if pv.accepts(e)] == ["page_view", "page_view"]

    last_url = by_name["last_url"]  # every event, criteria page_url LIKE '%/product%'
    assert last_url.matches_event(AD_QUARTILE) and not last_url.passes_criteria(AD_QUARTILE)
    product = make_event(page_url="https://shop/product/1")
    assert last_url.accepts(product) and last_url.value(product) == "https://shop/product/1"

    since = by_name["mins_since_pv"]
    assert since.time_unit == "min" and since.value(PAGE_VIEW) == PAGE_VIEW.atomic("derived_tstamp")
    assert by_name["peak_hour"].value(PAGE_VIEW) == 13
    assert by_name["full_name"].value(ITEM) == "Paris FR"


def test_ecommerce_cart_value_attribute() -> None:
    body = next(b for _, b in capture_bodies("attribute_groups") if b["name"] == "my_group")
    cart = compile_attribute(
        AttributeGroup.parse(body).attribute("cart_value"), AttributeKey(name="domain_userid")
    )
    ecom = "com.snowplowanalytics.snowplow.ecommerce"
    action = f"iglu:{ecom}/snowplow_ecommerce_action/jsonschema/1-0-2"
    product = f"iglu:{ecom}/product/jsonschema/1-0-0"
    add = make_event(
        event_vendor=ecom, event_name="snowplow_ecommerce_action", event_version="1-0-2",
        unstruct=(action, {"type": "add_to_cart"}),
        entities=[(product, {"id": "p1", "price": 19.99}), (product, {"id": "p2", "price": 5})],
    )  # fmt: skip
    remove = make_event(
        event_vendor=ecom, event_name="snowplow_ecommerce_action", event_version="1-0-2",
        unstruct=(action, {"type": "remove_from_cart"}), entities=[(product, {"price": 1.0})],
    )  # fmt: skip
    assert cart.accepts(add) and cart.value(add) == 19.99  # index 0: the first product only
    assert cart.matches_event(remove) and not cart.passes_criteria(remove)
    assert not cart.matches_event(PAGE_VIEW)


def test_warehouse_group_is_not_compiled() -> None:
    body = next(b for _, b in capture_bodies("attribute_groups") if b["name"] == "crm")
    with pytest.raises(DefinitionError, match="external_batch group"):
        compile_group(AttributeGroup.parse(body))


def test_counter_ignores_its_property() -> None:
    attribute = Attribute(name="c", type="int64", aggregation="counter",
                          property={"type": "atomic", "name": "page_url"})  # fmt: skip
    assert compile_attribute(attribute, AttributeKey(name="user_id")).value(PAGE_VIEW) is None
