"""Tracker protocol -> enriched TSV, field by field (the tracker protocol's table, by hand), and
through the engine's own parser."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from signals_stream.collector.mapping import (
    CONTEXTS_SCHEMA,
    RequestContext,
    enriched_fields,
    enriched_tsv,
    payload_events,
)
from signals_stream.errors import BadEvent
from signals_stream.events.fields import FIELD_COUNT, FIELD_INDEX
from signals_stream.events.parse import parse_tsv

PAYLOAD_DATA = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"
RECEIVED = datetime(2026, 12, 7, 10, 0, 0, 500_000, tzinfo=UTC)
CONTEXT = RequestContext(
    collector_tstamp=RECEIVED,
    etl_tstamp=datetime(2026, 12, 7, 10, 0, 0, 600_000, tzinfo=UTC),
    network_userid="5b1d1a52-0000-4000-8000-000000000001",
    useragent="Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/156.0",
    ip_address="127.0.0.1",
    v_collector="test-collector",
    v_etl="test-etl",
    new_event_id="11111111-2222-4333-8444-555555555555",
)
EID = "c6ef3124-b53a-4b13-a233-0088f79dcbcb"
PRODUCT = {
    "schema": "iglu:com.snowplowanalytics.snowplow.ecommerce/product/jsonschema/1-0-0",
    "data": {"id": "sku-1", "category": "shoes", "price": 120.5, "currency": "USD"},
}
ECOMMERCE = "iglu:com.snowplowanalytics.snowplow.ecommerce"
ACTION = {
    "schema": f"{ECOMMERCE}/snowplow_ecommerce_action/jsonschema/1-0-2",
    "data": {"type": "add_to_cart"},
}
CONTEXTS = {
    "schema": "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0",
    "data": [PRODUCT],
}
UNSTRUCT = {
    "schema": "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0",
    "data": ACTION,
}


def b64(doc: Any, padding: bool = False) -> str:
    text = base64.urlsafe_b64encode(orjson.dumps(doc)).decode()
    return text if padding else text.rstrip("=")


def fields(**params: Any) -> dict[str, str]:
    return enriched_fields({"e": "pv", "eid": EID, **params}, CONTEXT)


# The tracker protocol's one-to-one parameters, as its table lists them (snowplow/documentation,
# docs/collecting-data/collecting-from-own-applications/snowplow-tracker-protocol/index.md):
# parameter, value sent, enriched field, text written.
ONE_TO_ONE = [
    ("aid", "shop", "app_id", "shop"),
    ("p", "web", "platform", "web"),
    ("tna", "sp", "name_tracker", "sp"),
    ("tv", "js-4.10.1", "v_tracker", "js-4.10.1"),
    ("uid", "alice@example.com", "user_id", "alice@example.com"),
    (
        "duid",
        "0c4f2a4e-7e7b-4b8e-a1b1-7b4c1d3e9f01",
        "domain_userid",
        "0c4f2a4e-7e7b-4b8e-a1b1-7b4c1d3e9f01",
    ),
    (
        "sid",
        "9d3c1e0a-8a1b-4c2d-9e8f-0a1b2c3d4e5f",
        "domain_sessionid",
        "9d3c1e0a-8a1b-4c2d-9e8f-0a1b2c3d4e5f",
    ),
    ("vid", "3", "domain_sessionidx", "3"),
    ("tid", "508780", "txn_id", "508780"),
    ("fp", "1234567", "user_fingerprint", "1234567"),
    ("tz", "Europe/London", "os_timezone", "Europe/London"),
    ("lang", "en-GB", "br_lang", "en-GB"),
    ("cs", "UTF-8", "doc_charset", "UTF-8"),
    ("cd", "24", "br_colordepth", "24"),
    ("cookie", "1", "br_cookies", "1"),
    ("f_pdf", "1", "br_features_pdf", "1"),
    ("f_java", "0", "br_features_java", "0"),
    ("page", "Shoes | Demo shop", "page_title", "Shoes | Demo shop"),
    ("ua", "curl/8", "useragent", "curl/8"),
    ("ip", "10.1.2.3", "user_ipaddress", "10.1.2.3"),
    (
        "tnuid",
        "7f3e0a6c-1111-4111-8111-111111111111",
        "network_userid",
        "7f3e0a6c-1111-4111-8111-111111111111",
    ),
    ("se_ca", "shop", "se_category", "shop"),
    ("se_ac", "click", "se_action", "click"),
    ("se_la", "banner", "se_label", "banner"),
    ("se_pr", "top", "se_property", "top"),
    ("se_va", "12.50", "se_value", "12.50"),
    ("pp_mix", "0", "pp_xoffset_min", "0"),
    ("pp_max", "10", "pp_xoffset_max", "10"),
    ("pp_miy", "-5", "pp_yoffset_min", "-5"),
    ("pp_may", "900", "pp_yoffset_max", "900"),
    ("tr_id", "order-1", "tr_orderid", "order-1"),
    ("tr_af", "web", "tr_affiliation", "web"),
    ("tr_tt", "130.00", "tr_total", "130.00"),
    ("tr_tx", "10", "tr_tax", "10"),
    ("tr_sh", "5.5", "tr_shipping", "5.5"),
    ("tr_ci", "Leeds", "tr_city", "Leeds"),
    ("tr_st", "West Yorkshire", "tr_state", "West Yorkshire"),
    ("tr_co", "UK", "tr_country", "UK"),
    ("tr_cu", "GBP", "tr_currency", "GBP"),
    ("ti_id", "order-1", "ti_orderid", "order-1"),
    ("ti_sk", "sku-1", "ti_sku", "sku-1"),
    ("ti_nm", "Runner", "ti_name", "Runner"),
    ("ti_ca", "shoes", "ti_category", "shoes"),
    ("ti_pr", "60", "ti_price", "60"),
    ("ti_qu", "2", "ti_quantity", "2"),
    ("ti_cu", "GBP", "ti_currency", "GBP"),
]


@pytest.mark.parametrize(("param", "sent", "field", "written"), ONE_TO_ONE)
def test_each_one_to_one_parameter_lands_in_its_field(
    param: str, sent: str, field: str, written: str
) -> None:
    out = fields(**{param: sent})
    assert out[field] == written
    assert parse_tsv(enriched_tsv({"e": "pv", "eid": EID, param: sent}, CONTEXT)) is not None


@pytest.mark.parametrize(
    ("param", "width_field", "height_field"),
    [
        ("res", "dvce_screenwidth", "dvce_screenheight"),
        ("vp", "br_viewwidth", "br_viewheight"),
        ("ds", "doc_width", "doc_height"),
    ],
)
def test_dimensions_split_on_x(param: str, width_field: str, height_field: str) -> None:
    out = fields(**{param: "1280x720"})
    assert (out[width_field], out[height_field]) == ("1280", "720")


@pytest.mark.parametrize(
    ("code", "event", "schema"),
    [
        ("pv", "page_view", ("com.snowplowanalytics.snowplow", "page_view", "jsonschema", "1-0-0")),
        ("pp", "page_ping", ("com.snowplowanalytics.snowplow", "page_ping", "jsonschema", "1-0-0")),
        ("se", "struct", ("com.google.analytics", "event", "jsonschema", "1-0-0")),
        (
            "tr",
            "transaction",
            ("com.snowplowanalytics.snowplow", "transaction", "jsonschema", "1-0-0"),
        ),
        (
            "ti",
            "transaction_item",
            ("com.snowplowanalytics.snowplow", "transaction_item", "jsonschema", "1-0-0"),
        ),
    ],
)
def test_event_type_and_baked_in_schema(code: str, event: str, schema: tuple[str, ...]) -> None:
    out = fields(e=code)
    assert out["event"] == event
    assert (
        out["event_vendor"],
        out["event_name"],
        out["event_format"],
        out["event_version"],
    ) == schema


def test_timestamps_and_the_derived_time_rule() -> None:
    # created 10:00:00.000, sent 10:00:02.000 by the device clock; received 10:00:00.500:
    # derived = collector - (sent - created) = 09:59:58.500 (Enrich's getDerivedTimestamp).
    created, sent = 1796637600000, 1796637602000
    out = fields(dtm=str(created), stm=str(sent))
    assert out["dvce_created_tstamp"] == "2026-12-07 10:00:00.000"
    assert out["dvce_sent_tstamp"] == "2026-12-07 10:00:02.000"
    assert out["collector_tstamp"] == "2026-12-07 10:00:00.500"
    assert out["etl_tstamp"] == "2026-12-07 10:00:00.600"
    assert out["derived_tstamp"] == "2026-12-07 09:59:58.500"
    # Sent before created (a clock jump): the collector time.
    assert fields(dtm=str(sent), stm=str(created))["derived_tstamp"] == "2026-12-07 10:00:00.500"
    # Only one device time: the collector time.
    assert fields(dtm=str(created))["derived_tstamp"] == "2026-12-07 10:00:00.500"
    # A true timestamp wins.
    out = fields(dtm=str(created), stm=str(sent), ttm="1796637000123")
    assert out["true_tstamp"] == out["derived_tstamp"] == "2026-12-07 09:50:00.123"
    # A device delay longer than the time since 1970 (sent in year 9999, created at 0): the
    # collector time, not a date before the epoch (the parser refuses those).
    assert fields(dtm="0", stm="253402300799999")["derived_tstamp"] == "2026-12-07 10:00:00.500"


def test_event_id_given_or_new() -> None:
    assert fields()["event_id"] == EID
    generated = enriched_fields({"e": "pv"}, CONTEXT)
    assert generated["event_id"] == CONTEXT.new_event_id


def test_page_url_and_referrer_split() -> None:
    out = fields(
        url="https://shop.example.com/products/shoes?utm_source=news&utm_medium=email&utm_campaign=xmas&utm_term=run&utm_content=top#reviews",
        refr="http://localhost:9090/demo/?q=1",
    )
    assert out["page_urlscheme"] == "https"
    assert out["page_urlhost"] == "shop.example.com"
    assert out["page_urlport"] == "443"  # the scheme's default, as Enrich writes
    assert out["page_urlpath"] == "/products/shoes"
    assert out["page_urlquery"].startswith("utm_source=news&")
    assert out["page_urlfragment"] == "reviews"
    assert (out["mkt_source"], out["mkt_medium"], out["mkt_campaign"]) == ("news", "email", "xmas")
    assert (out["mkt_term"], out["mkt_content"]) == ("run", "top")
    assert out["page_referrer"] == "http://localhost:9090/demo/?q=1"
    assert (out["refr_urlscheme"], out["refr_urlhost"], out["refr_urlport"]) == (
        "http",
        "localhost",
        "9090",
    )
    assert (out["refr_urlpath"], out["refr_urlquery"]) == ("/demo/", "q=1")
    assert "refr_urlfragment" not in out


def test_a_url_that_does_not_split_keeps_only_its_text() -> None:
    out = fields(url="not a url")
    assert out["page_url"] == "not a url"
    assert "page_urlhost" not in out


def test_request_context_fills_what_the_tracker_did_not_send() -> None:
    out = fields()
    assert out["network_userid"] == CONTEXT.network_userid
    assert out["useragent"] == CONTEXT.useragent
    assert out["user_ipaddress"] == "127.0.0.1"
    assert (out["v_collector"], out["v_etl"]) == ("test-collector", "test-etl")
    assert fields(nuid="a-b")["network_userid"] == "a-b"


def test_tabs_and_control_characters_are_made_tsv_safe() -> None:
    out = fields(page="a\tb\nc\x00d", uid="\n")
    assert out["page_title"] == "a    bcd"
    assert "user_id" not in out  # empty once cleaned: null, as Enrich


@pytest.mark.parametrize("padding", [False, True])
def test_base64_and_plain_contexts_and_self_describing_event(padding: bool) -> None:
    encoded = fields(e="ue", cx=b64(CONTEXTS, padding), ue_px=b64(UNSTRUCT, padding))
    plain = fields(
        e="ue", co=orjson.dumps(CONTEXTS).decode(), ue_pr=orjson.dumps(UNSTRUCT).decode()
    )
    for out in (encoded, plain):
        assert orjson.loads(out["contexts"]) == {"schema": CONTEXTS_SCHEMA, "data": [PRODUCT]}
        assert orjson.loads(out["unstruct_event"])["data"] == ACTION
        assert out["event"] == "unstruct"
        assert out["event_vendor"] == "com.snowplowanalytics.snowplow.ecommerce"
        assert out["event_name"] == "snowplow_ecommerce_action"
        assert (out["event_format"], out["event_version"]) == ("jsonschema", "1-0-2")
        assert "\t" not in out["contexts"] and "\n" not in out["unstruct_event"]


def test_round_trip_through_the_engine_parser() -> None:
    params = {
        "e": "ue",
        "eid": EID,
        "p": "web",
        "aid": "demo-shop",
        "duid": "0c4f2a4e-7e7b-4b8e-a1b1-7b4c1d3e9f01",
        "sid": "9d3c1e0a-8a1b-4c2d-9e8f-0a1b2c3d4e5f",
        "vid": "2",
        "url": "http://localhost:9090/demo/#product/sku-1",
        "dtm": "1796637600000",
        "stm": "1796637600100",
        "cx": b64(CONTEXTS),
        "ue_px": b64(UNSTRUCT),
    }
    line = enriched_tsv(params, CONTEXT)
    assert line.count("\t") == FIELD_COUNT - 1
    assert line.split("\t")[FIELD_INDEX["event"]] == "unstruct"
    event = parse_tsv(line.encode())
    assert event.event_id == EID
    assert (event.event_vendor, event.event_name, event.event_version) == (
        "com.snowplowanalytics.snowplow.ecommerce",
        "snowplow_ecommerce_action",
        "1-0-2",
    )
    assert event.unstruct_data == {"type": "add_to_cart"}
    products = event.entities("contexts_com_snowplowanalytics_snowplow_ecommerce_product_1")
    assert [p["price"] for p in products] == [120.5]
    assert event.atomic("domain_userid") == params["duid"]
    assert event.atomic("domain_sessionidx") == 2
    assert event.atomic("page_urlfragment") == "product/sku-1"
    # 10:00:00.500 - 100 ms of device delay, in epoch ms
    assert event.event_time_ms == 1796637600400
    assert event.collector_tstamp_ms == 1796637600500


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({}, "MissingParameter(e)"),
        ({"e": "zz"}, "InvalidValue(e)"),
        ({"e": "pv", "eid": "not-a-uuid"}, "InvalidValue(eid)"),
        ({"e": "pv", "p": "fridge"}, "InvalidValue(p)"),
        ({"e": "pv", "vid": "x"}, "InvalidValue(vid)"),
        ({"e": "pv", "vid": "2147483648"}, "InvalidValue(vid)"),
        ({"e": "pv", "se_va": "1e3x"}, "InvalidValue(se_va)"),
        ({"e": "pv", "cookie": "yes"}, "InvalidValue(cookie)"),
        ({"e": "pv", "res": "1280*720"}, "InvalidValue(res)"),
        ({"e": "pv", "dtm": "yesterday"}, "InvalidTimestamp(dtm)"),
        ({"e": "pv", "dtm": "999999999999999"}, "InvalidTimestamp(dtm)"),
        ({"e": "pv", "cx": "%%%"}, "InvalidBase64(cx)"),
        ({"e": "pv", "co": "{"}, "InvalidJson(co)"),
        (
            {"e": "pv", "co": '{"schema":"iglu:x/y/jsonschema/1-0-0","data":[]}'},
            "InvalidSchema(co)",
        ),
        (
            {"e": "pv", "co": orjson.dumps({**CONTEXTS, "data": [{"data": {}}]}).decode()},
            "InvalidSchema(co)",
        ),
        ({"e": "ue"}, "MissingParameter(ue_pr)"),
        (
            {"e": "ue", "ue_pr": orjson.dumps({**UNSTRUCT, "data": {"schema": "x"}}).decode()},
            "InvalidSchema(ue_pr)",
        ),
        ({"e": "pv", "aid": ["a"]}, "InvalidValue(aid)"),
    ],
)
def test_bad_parameters_are_refused_naming_the_parameter(
    params: dict[str, Any], reason: str
) -> None:
    with pytest.raises(BadEvent) as caught:
        enriched_fields(params, CONTEXT)
    assert caught.value.reason == reason


def test_payload_data_body() -> None:
    body = orjson.dumps(
        {
            "schema": PAYLOAD_DATA,
            "data": [{"e": "pv"}, {"e": "pp"}],
        }
    )
    assert [e["e"] for e in payload_events(body)] == ["pv", "pp"]
    for bad, reason in [
        (b"{", "InvalidJson(body)"),
        (b"[]", "InvalidSchema(body)"),
        (b'{"schema":"iglu:x/y/jsonschema/1-0-0","data":[]}', "InvalidSchema(body)"),
        (
            orjson.dumps({"schema": PAYLOAD_DATA, "data": [1]}),
            "InvalidSchema(body)",
        ),
    ]:
        with pytest.raises(BadEvent) as caught:
            payload_events(bad)
        assert caught.value.reason == reason
