"""The JSON form of enriched events and the repartition projection, on the real sample data."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from signals_stream.errors import BadEvent
from signals_stream.events.fields import ATOMIC_FIELD_NAMES, FIELD_NAMES
from signals_stream.events.parse import Event, Projection, parse_json, parse_record
from tests.datafiles import read_lines

WEB_PAGE = "contexts_com_snowplowanalytics_snowplow_web_page_1"
REAL_LINES = [
    line
    for path in (
        "kafka-live-viewer-profiles/micro.1.tsv",
        "snowplow-golang-analytics-sdk/readme-quickstart-add_to_cart.tsv",
        "snowplow-rdb-loader/widerow-json.input-events.tsv",
        "snowplow-rdb-loader/input-events-custom-contexts.tsv",
        "snowplow-rdb-loader/input-events-custom-unstruct.tsv",
    )
    for line in read_lines(path)
    if line.count(b"\t") == 130
]
PAGE_VIEW = REAL_LINES[0]
(ADD_TO_CART,) = read_lines("snowplow-golang-analytics-sdk/readme-quickstart-add_to_cart.tsv")


def atomic_values(event: Event) -> dict[str, Any]:
    return {name: event.atomic(name) for name in ATOMIC_FIELD_NAMES}


def entities(event: Event) -> dict[str, list[dict[str, Any]]]:
    return {key: event.entities(key) for key in event.entity_keys}


def assert_same(got: Event, expected: Event, *, identity: bool = True) -> None:
    assert atomic_values(got) == atomic_values(expected)
    assert entities(got) == entities(expected)
    assert (got.unstruct_key, got.unstruct_data) == (expected.unstruct_key, expected.unstruct_data)
    assert (got.collector_tstamp_ms, got.event_time_ms) == (
        expected.collector_tstamp_ms,
        expected.event_time_ms,
    )
    if identity:
        assert (got.event_vendor, got.event_name, got.event_version) == (
            expected.event_vendor,
            expected.event_name,
            expected.event_version,
        )


def non_lossy(line: bytes) -> dict[str, Any]:
    """The Scala SDK's non-lossy JSON of a TSV line, built from the raw fields."""
    fields = line.decode().split("\t")
    doc: dict[str, Any] = dict(parse_record(line).to_shredded_json())
    doc = {k: v for k, v in doc.items() if not k.startswith(("contexts_", "unstruct_event_"))}
    doc.pop("geo_location", None)
    doc["contexts"] = orjson.loads(fields[52]) if fields[52] else {}
    doc["unstruct_event"] = orjson.loads(fields[58]) if fields[58] else None
    doc["derived_contexts"] = orjson.loads(fields[122]) if fields[122] else {}
    return doc


# --- lossy (shredded) form ------------------------------------------------------------------


def test_lossy_round_trip_on_every_real_line() -> None:
    assert len(REAL_LINES) == 73 + 1 + 48 + 100 + 100
    for line in REAL_LINES:
        event = parse_record(line)
        again = parse_json(orjson.dumps(event.to_shredded_json()))
        # Lossy keys drop the vendor's dots, so identity survives only via the atomic columns.
        assert_same(again, event, identity=event.atomic("event_vendor") is not None)
        assert again.to_shredded_json() == event.to_shredded_json()


def test_lossy_json_detected_by_parse_record() -> None:
    event = parse_record(PAGE_VIEW)
    text = orjson.dumps(event.to_shredded_json())
    for raw in (text, b"  \n" + text, b"\t" + text + b"\n"):
        assert_same(parse_record(raw), event)


def test_python_sdk_spelling_and_omitted_nulls() -> None:
    event = parse_record(PAGE_VIEW)
    doc = {k: v for k, v in event.to_shredded_json().items() if v is not None}
    doc["refr_device_tstamp"] = "2024-11-16T13:33:21.000Z"
    again = parse_json(orjson.dumps(doc))
    assert again.atomic("refr_dvce_tstamp").isoformat() == "2024-11-16T13:33:21+00:00"
    assert again.atomic("page_urlpath") == event.atomic("page_urlpath")


def test_lossy_unstruct_without_vendor_keeps_key_and_data() -> None:
    doc = parse_record(ADD_TO_CART).to_shredded_json()
    for name in ("event_vendor", "event_name", "event_version"):
        doc[name] = None
    event = parse_json(orjson.dumps(doc))
    assert event.unstruct_key == "unstruct_event_com_snowplowanalytics_snowplow_add_to_cart_1"
    assert event.unstruct_data == {
        "sku": "item41",
        "quantity": 2,
        "unitPrice": 32.4,
        "currency": "RON",
    }
    assert (event.event_vendor, event.event_name) == (None, None)


# --- non-lossy form -------------------------------------------------------------------------


def test_non_lossy_form_on_every_real_line() -> None:
    for line in REAL_LINES:
        assert_same(parse_json(orjson.dumps(non_lossy(line))), parse_record(line))


def test_non_lossy_json_fields_as_strings_or_empty() -> None:
    fields = ADD_TO_CART.decode().split("\t")
    doc = non_lossy(ADD_TO_CART)
    doc["unstruct_event"] = fields[58]  # still JSON text, as in the TSV
    doc["derived_contexts"] = fields[122]
    doc["contexts"] = None
    assert_same(parse_json(orjson.dumps(doc).decode()), parse_record(ADD_TO_CART))


# --- JSON failures --------------------------------------------------------------------------


def page_view_doc(**changes: Any) -> bytes:
    doc = parse_record(PAGE_VIEW).to_shredded_json()
    doc.update(changes)
    return orjson.dumps(doc)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"{", "InvalidJson(record)"),
        (b"{}", "MissingEventId"),
        (b'{"a":1} x', "InvalidJson(record)"),
        (b'{"a":"\xff"}', "NotUtf8"),
        (b"[1]", "NotTSV"),  # not '{': read as TSV
        (page_view_doc(event_id=None), "MissingEventId"),
        (page_view_doc(collector_tstamp=None), "MissingCollectorTstamp"),
        (page_view_doc(collector_tstamp="2024-11-16T13:33:21+01:00"),
         "InvalidTimestamp(collector_tstamp)"),
        (page_view_doc(domain_sessionidx="abc"), "InvalidValue(domain_sessionidx)"),
        (page_view_doc(domain_sessionidx=True), "InvalidValue(domain_sessionidx)"),
        (page_view_doc(domain_sessionidx=1.5), "InvalidValue(domain_sessionidx)"),
        (page_view_doc(domain_sessionidx=2**31), "InvalidValue(domain_sessionidx)"),
        (page_view_doc(domain_sessionidx="1\t2"), "InvalidValue(domain_sessionidx)"),
        (page_view_doc(br_cookies=1), "InvalidValue(br_cookies)"),
        (page_view_doc(se_value=True), "InvalidValue(se_value)"),
        (page_view_doc(user_id=12), "InvalidValue(user_id)"),
        (page_view_doc(user_id=["a"]), "InvalidValue(user_id)"),
        (page_view_doc(etl_tstamp=1731764002625), "InvalidValue(etl_tstamp)"),
        (page_view_doc(contexts_foo=[]), "InvalidSchema(contexts)"),
        (page_view_doc(contexts_com_acme_x_1={"id": 1}), "InvalidJson(contexts)"),
        (page_view_doc(contexts_com_acme_x_1=[1]), "InvalidJson(contexts)"),
        (page_view_doc(unstruct_event_com_acme_x_1=[]), "InvalidJson(unstruct_event)"),
        (page_view_doc(unstruct_event_x={}), "InvalidSchema(unstruct_event)"),
        (page_view_doc(unstruct_event_com_acme_x_1={}, unstruct_event_com_acme_y_1={}),
         "InvalidJson(unstruct_event)"),
        (page_view_doc(contexts={"schema": "iglu:com.acme/x/jsonschema/1-0-0", "data": []}),
         "InvalidSchema(contexts)"),
        (page_view_doc(unstruct_event="{"), "InvalidJson(unstruct_event)"),
        (page_view_doc(derived_contexts=[]), "InvalidJson(derived_contexts)"),
        (b'{"a":' * 201 + b"1" + b"}" * 201, "InvalidJson(record)"),
    ],
)  # fmt: skip
def test_json_failures(raw: bytes, expected: str) -> None:
    with pytest.raises(BadEvent) as caught:
        parse_record(raw)
    assert caught.value.reason == expected


@pytest.mark.parametrize("raw", [b"1", b"null", b'"x"', b"[]"])
def test_parse_json_needs_an_object(raw: bytes) -> None:
    with pytest.raises(BadEvent, match=r"InvalidJson\(record\)"):
        parse_json(raw)


def test_parse_json_text_with_lone_surrogate() -> None:
    with pytest.raises(BadEvent, match="NotUtf8"):
        parse_json('{"app_id":"\ud800"}')


def test_json_typed_values_and_text_forms() -> None:
    event = parse_json(
        page_view_doc(
            domain_sessionidx="7", br_cookies=False, dvce_ismobile="1", se_value=3,
            tr_total="12.50", app_id="", geo_latitude=37.443604, geo_longitude=-122.4124,
        )
    )  # fmt: skip
    assert event.atomic("domain_sessionidx") == 7
    assert event.atomic("br_cookies") is False
    assert event.atomic("dvce_ismobile") is True
    assert event.atomic("se_value") == 3.0 and type(event.atomic("se_value")) is float
    assert event.atomic("tr_total") == 12.5
    assert event.atomic("app_id") is None
    assert event.to_shredded_json()["geo_location"] == "37.443604,-122.4124"


# --- projection -----------------------------------------------------------------------------


def test_projection_all_fields_round_trip_on_every_real_line() -> None:
    everything = Projection(all_fields=True)
    for line in REAL_LINES:
        event = parse_record(line)
        again = Event.from_projection(event.project(everything))
        assert_same(again, event)
        assert again.to_shredded_json() == event.to_shredded_json()


def test_projection_keeps_only_what_is_asked() -> None:
    event = parse_record(ADD_TO_CART)
    projection = Projection(
        atomic=frozenset({"user_id", "refr_device_tstamp"}),
        entity_keys=frozenset({"contexts_nl_basjes_yauaa_context_1", "contexts_absent_1"}),
    )
    raw = event.project(projection)
    again = Event.from_projection(raw)
    assert raw == orjson.dumps(orjson.loads(raw))  # compact orjson
    assert again.atomic("user_id") == "user<built-in function input>"
    assert again.atomic("platform") is None  # not projected
    for name in ("event_id", "collector_tstamp", "derived_tstamp"):
        assert again.atomic(name) == event.atomic(name)
    assert (again.event_vendor, again.event_name, again.event_version) == (
        event.event_vendor, event.event_name, event.event_version,
    )  # fmt: skip
    assert (again.collector_tstamp_ms, again.event_time_ms) == (
        event.collector_tstamp_ms, event.event_time_ms,
    )  # fmt: skip
    assert again.entities("contexts_nl_basjes_yauaa_context_1") == event.entities(
        "contexts_nl_basjes_yauaa_context_1"
    )
    assert again.entities("contexts_nl_basjes_yauaasd_context_1") == []
    assert list(again.entity_keys) == ["contexts_nl_basjes_yauaa_context_1"]
    # The unstruct key always travels (it names the event); its data only when asked for.
    assert (again.unstruct_key, again.unstruct_data) == (event.unstruct_key, None)
    with_data = Event.from_projection(
        event.project(Projection(unstruct_keys=frozenset({event.unstruct_key or ""})))
    )
    assert with_data.unstruct_data == event.unstruct_data
    assert event.project(projection) == raw  # deterministic


def test_projection_identity_survives_without_the_unstruct_data() -> None:
    line = next(line for line in read_lines("snowplow-rdb-loader/input-events-custom-unstruct.tsv")
                if b"\tunstruct\t" in line)  # fmt: skip
    event = parse_record(line)
    assert event.atomic("event_name") is None and event.event_name is not None
    again = Event.from_projection(event.project(Projection()))
    assert (again.event_vendor, again.event_name, again.event_version) == (
        event.event_vendor, event.event_name, event.event_version,
    )  # fmt: skip
    assert again.atomic("event_name") is None


def test_projection_definition() -> None:
    assert Projection(atomic={"refr_device_tstamp"}).atomic == frozenset({"refr_device_tstamp"})  # type: ignore[arg-type]
    assert Projection(atomic=frozenset({"refr_device_tstamp"})).atomic_fields == (
        ("refr_dvce_tstamp", FIELD_NAMES.index("refr_dvce_tstamp")),
    )
    with pytest.raises(ValueError, match="contexts, nope"):
        Projection(atomic=frozenset({"nope", "contexts"}))
    merged = Projection(atomic=frozenset({"user_id"})) | Projection(
        entity_keys=frozenset({WEB_PAGE}), all_fields=True
    )
    assert merged == Projection(frozenset({"user_id"}), frozenset({WEB_PAGE}), frozenset(), True)
    assert hash(merged) == hash(
        Projection(frozenset({"user_id"}), frozenset({WEB_PAGE}), all_fields=True)
    )


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"[]", b"{}", b'{"v":2,"a":{},"t":[1,1],"i":[null,null,null]}',
     b'{"v":1,"a":{"nope":"x"},"t":[1,1],"i":[null,null,null]}',
     b'{"v":1,"a":{"event_id":1},"t":[1,1],"i":[null,null,null]}',
     b'{"v":1,"a":{},"t":[1,1],"i":[null,null,null]}',
     b'{"v":1,"a":{"event_id":"x"},"t":["1",1],"i":[null,null,null]}',
     b'{"v":1,"a":{"event_id":"x"},"t":[1,1],"i":[null,null]}'],
)  # fmt: skip
def test_from_projection_rejects_garbage(raw: bytes) -> None:
    with pytest.raises(BadEvent, match="InvalidProjection"):
        Event.from_projection(raw)
