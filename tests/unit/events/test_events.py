"""The enriched-event parser on the real sample data (shared/data) and on edited real lines."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from signals_stream.errors import BadEvent
from signals_stream.events.fields import ATOMIC_FIELD_NAMES, FIELD_INDEX, FIELD_NAMES
from signals_stream.events.parse import (
    Event,
    Projection,
    parse_json,
    parse_record,
    parse_tsv,
    shred_key,
)
from tests.datafiles import read_lines

MICRO = "kafka-live-viewer-profiles/micro.1.tsv"
README = "snowplow-golang-analytics-sdk/readme-quickstart-add_to_cart.tsv"
WIDEROW = "snowplow-rdb-loader/widerow-json.input-events.tsv"
CUSTOM_CONTEXTS = "snowplow-rdb-loader/input-events-custom-contexts.tsv"
CUSTOM_UNSTRUCT = "snowplow-rdb-loader/input-events-custom-unstruct.tsv"
INVALID_TS = "snowplow-rdb-loader/invalidtimestamp.input-events.tsv"
WEB_PAGE = "contexts_com_snowplowanalytics_snowplow_web_page_1"

WIDEROW_LINES = read_lines(WIDEROW)
GOOD_WIDEROW = [line for line in WIDEROW_LINES if line.count(b"\t") == 130]
ORACLE = {
    row["event_id"]: row
    for row in map(
        orjson.loads, read_lines("snowplow-rdb-loader/widerow-json.output-widerows.jsonl")
    )
}
MICRO_LINES = read_lines(MICRO)
PAGE_VIEW = MICRO_LINES[0]


def edit(line: bytes, **values: str) -> bytes:
    """A real line with some fields replaced (by name)."""
    fields = line.decode().split("\t")
    for name, value in values.items():
        fields[FIELD_INDEX[name]] = value
    return "\t".join(fields).encode()


def reason(raw: bytes) -> str:
    with pytest.raises(BadEvent) as caught:
        parse_record(raw)
    return caught.value.reason


def without_versions(value: Any) -> Any:
    """The oracle predates ``_schema_version``: compare without it."""
    if isinstance(value, list):
        return [without_versions(v) for v in value]
    if isinstance(value, dict):
        return {k: without_versions(v) for k, v in value.items() if k != "_schema_version"}
    return value


def raw_entities(text: str) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Entities of a raw contexts field by shred key, read independently of the parser."""
    found: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for item in orjson.loads(text)["data"] if text else []:
        vendor, name, _, version = item["schema"].removeprefix("iglu:").split("/")
        key = shred_key("contexts", vendor, name, int(version.split("-")[0]))
        found.setdefault(key, []).append((version, item["data"]))
    return found


# --- the Scala SDK oracle (rdb-loader widerow) ---------------------------------------------


def test_widerow_has_48_good_lines_and_oracle_rows() -> None:
    assert len(GOOD_WIDEROW) == 48
    assert {parse_record(line).event_id for line in GOOD_WIDEROW} == set(ORACLE)


@pytest.mark.parametrize("line", GOOD_WIDEROW, ids=lambda line: line.split(b"\t")[6].decode())
def test_widerow_matches_scala_sdk_lossy_json(line: bytes) -> None:
    event = parse_record(line)
    ours = event.to_shredded_json()
    oracle = ORACLE[event.event_id]
    fields = line.decode().split("\t")
    tracker, derived = raw_entities(fields[52]), raw_entities(fields[122])

    assert set(ours) == set(oracle)
    for key, expected in oracle.items():
        if key.startswith("contexts_"):
            # Documented deviation: the SDK lets derived entities overwrite the tracker's of
            # the same key; we append them. The oracle holds the derived ones then.
            ours_plain = without_versions(ours[key])
            assert ours_plain == [d for _, d in tracker.get(key, [])] + [
                d for _, d in derived.get(key, [])
            ]
            assert expected == [d for _, d in (derived.get(key) or tracker[key])]
            versions = [v for v, _ in tracker.get(key, []) + derived.get(key, [])]
            assert [e["_schema_version"] for e in ours[key]] == versions
        else:
            assert ours[key] == expected, key


def test_widerow_timestamps_keep_their_fractional_digits() -> None:
    (line,) = [line for line in GOOD_WIDEROW if b"\t2021-10-15 09:06:26.323397414\t" in line]
    event = parse_record(line)
    assert event.to_shredded_json()["etl_tstamp"] == "2021-10-15T09:06:26.323397414Z"
    assert event.atomic("etl_tstamp") == datetime(2021, 10, 15, 9, 6, 26, 323397, tzinfo=UTC)


def test_widerow_malformed_lines_are_the_documented_bad_rows() -> None:
    bad = [line for line in WIDEROW_LINES if line.count(b"\t") != 130]
    expected = [
        orjson.loads(row)["data"]
        for row in read_lines("snowplow-rdb-loader/widerow-json.output-badrows.jsonl")
    ]
    assert [b["failure"]["type"] for b in expected] == ["FieldNumberMismatch"] * 2
    by_payload = {b["payload"].encode(): b["failure"]["fieldCount"] for b in expected}
    assert sorted(by_payload.values()) == [129, 130]
    for line in bad:
        assert reason(line) == f"FieldNumberMismatch({by_payload[line]})"


# --- real traffic: Snowplow Micro ----------------------------------------------------------


def test_micro_events_identity() -> None:
    events = [parse_record(line) for line in MICRO_LINES]
    assert len(events) == 73
    names = [(e.event_vendor, e.event_name, e.event_version) for e in events]
    snowplow = "com.snowplowanalytics.snowplow"
    assert names.count((snowplow, "page_view", "1-0-0")) == 2
    assert names.count((snowplow, "page_ping", "1-0-0")) == 24
    media = [e for e in events if e.event_vendor == "com.snowplowanalytics.snowplow.media"]
    assert len(media) == 47
    assert all(e.atomic("event") == "unstruct" for e in media)
    assert all(e.unstruct_key == shred_key("unstruct_event", e.event_vendor, e.event_name, 1)
               for e in media)  # fmt: skip
    play = next(e for e in media if e.event_name == "play_event")
    assert play.unstruct_key == "unstruct_event_com_snowplowanalytics_snowplow_media_play_event_1"
    assert play.unstruct_data == {}


def test_micro_lines_keep_their_two_trailing_empty_fields() -> None:
    with_newline = MICRO_LINES[0] + b"\n"
    assert with_newline.endswith(b"\t\t\n")
    for raw in (with_newline, MICRO_LINES[0] + b"\r\n", MICRO_LINES[0]):
        event = parse_record(raw)
        assert event.atomic("event_fingerprint") is None
        assert event.atomic("true_tstamp") is None
        assert event.atomic("event_version") == "1-0-0"


def test_micro_times_and_types() -> None:
    event = parse_record(MICRO_LINES[5])
    fields = MICRO_LINES[5].decode().split("\t")
    derived = datetime.fromisoformat(fields[124]).replace(tzinfo=UTC)
    collector = datetime.fromisoformat(fields[3]).replace(tzinfo=UTC)
    assert (fields[3], fields[124]) == ("2024-11-16 13:33:30.146", "2024-11-16 13:33:29.298")
    assert event.event_time_ms == round(derived.timestamp() * 1000)
    assert event.collector_tstamp_ms == round(collector.timestamp() * 1000)
    assert event.atomic("derived_tstamp") == derived
    assert event.atomic("collector_tstamp").tzinfo is UTC
    assert event.atomic("domain_sessionidx") == int(fields[16]) == 2
    assert event.atomic("br_cookies") is True
    assert event.atomic("dvce_screenwidth") == 1600
    assert event.atomic("app_id") is None  # empty in Micro
    assert event.atomic("platform") == "web"
    assert event.event_id == fields[6] == event.atomic("event_id")


def test_micro_entities() -> None:
    events = [parse_record(line) for line in MICRO_LINES]
    assert all(len(e.entities(WEB_PAGE)) == 1 for e in events)
    assert all(e.entities(WEB_PAGE)[0]["_schema_version"] == "1-0-0" for e in events)
    players = [e.entities("contexts_com_snowplowanalytics_snowplow_media_player_2") for e in events]
    player = next(p for p in players if p)[0]
    assert player["_schema_version"] == "2-0-0"
    assert player["playerType"] == "html5"
    assert events[0].entities("contexts_com_snowplowanalytics_snowplow_media_player_1") == []
    assert events[0].entities("contexts_nope_1") == []
    # Every page ping belongs to a page view seen before it (web_page.id).
    seen: set[str] = set()
    for event in events:
        page_id = event.entities(WEB_PAGE)[0]["id"]
        if event.event_name == "page_view":
            seen.add(page_id)
        elif event.event_name == "page_ping":
            assert page_id in seen


def test_micro_page_pings_with_empty_offsets_read_none() -> None:
    pings = [parse_record(line) for line in MICRO_LINES if b"\tpage_ping\t" in line]
    empty = [p for p in pings if p.atomic("pp_yoffset_max") is None]
    filled = [p for p in pings if p.atomic("pp_yoffset_max") is not None]
    assert empty and filled
    assert all(isinstance(p.atomic("pp_yoffset_max"), int) for p in filled)


# --- the Go SDK README line -----------------------------------------------------------------


def test_readme_add_to_cart() -> None:
    (line,) = read_lines(README)
    assert not line.endswith(b"\n")
    event = parse_record(line)
    assert (event.event_vendor, event.event_name, event.event_version) == (
        "com.snowplowanalytics.snowplow",
        "add_to_cart",
        "1-0-0",
    )
    assert event.unstruct_key == "unstruct_event_com_snowplowanalytics_snowplow_add_to_cart_1"
    assert event.unstruct_data == {
        "sku": "item41",
        "quantity": 2,
        "unitPrice": 32.4,
        "currency": "RON",
    }
    assert event.atomic("user_id") == "user<built-in function input>"
    assert event.atomic("platform") == "pc"
    yauaa = event.entities("contexts_nl_basjes_yauaa_context_1")
    assert len(yauaa) == 2 and yauaa[0] == yauaa[1]
    assert yauaa[0]["agentName"] == "python-requests"
    assert len(event.entities("contexts_nl_basjes_yauaasd_context_1")) == 1
    assert set(event.entity_keys) == {
        "contexts_nl_basjes_yauaa_context_1",
        "contexts_nl_basjes_yauaasd_context_1",
    }
    assert event.event_time_ms == event.collector_tstamp_ms  # derived == collector here


# --- generator data: empty event_vendor columns --------------------------------------------


@pytest.mark.parametrize("path", [CUSTOM_CONTEXTS, CUSTOM_UNSTRUCT])
def test_custom_files_identity_falls_back(path: str) -> None:
    events = [parse_record(line) for line in read_lines(path)]
    assert len(events) == 100
    assert all(e.atomic("event_vendor") is None and e.atomic("event_name") is None for e in events)
    kinds: dict[str, set[tuple[str | None, str | None, str | None]]] = {}
    for event in events:
        kinds.setdefault(event.atomic("event"), set()).add(
            (event.event_vendor, event.event_name, event.event_version)
        )
    assert kinds["page_view"] == {("com.snowplowanalytics.snowplow", "page_view", "1-0-0")}
    assert kinds["page_ping"] == {("com.snowplowanalytics.snowplow", "page_ping", "1-0-0")}
    assert kinds["struct"] == {("com.google.analytics", "event", "1-0-0")}
    for event in events:
        if event.atomic("event") == "unstruct":
            assert event.unstruct_key is not None and event.unstruct_data is not None
            assert event.unstruct_key == shred_key(
                "unstruct_event", event.event_vendor, event.event_name,
                int(event.event_version.split("-")[0]),
            )  # fmt: skip
        else:
            assert event.unstruct_key is None


def test_custom_unstruct_schema_is_the_identity() -> None:
    events = [parse_record(line) for line in read_lines(CUSTOM_UNSTRUCT)]
    names = {e.event_name for e in events if e.atomic("event") == "unstruct"}
    assert len(names) == 1
    assert all(e.unstruct_key.startswith("unstruct_event_") for e in events if e.unstruct_key)


# --- the documented timestamp errors --------------------------------------------------------


def test_invalid_timestamp_file_yields_the_documented_errors() -> None:
    documented = []
    for row in read_lines("snowplow-rdb-loader/invalidtimestamp.output-badrows.jsonl"):
        (message,) = orjson.loads(row)["data"]["failure"]["errors"]
        match = re.fullmatch(
            r"Timestamp (\S+) is before than minimum timestamp, at column (\w+)", message
        )
        assert match is not None
        documented.append((match[1].replace("T", " ").removesuffix("Z"), match[2]))
    outcomes = []
    for line in read_lines(INVALID_TS):
        try:
            outcomes.append(parse_record(line).atomic("etl_tstamp").year)
        except BadEvent as error:
            outcomes.append(error.reason)
            assert any(value in error.detail for value, _ in documented)
    assert outcomes == ["InvalidTimestamp(etl_tstamp)", 2006, "InvalidTimestamp(etl_tstamp)"]
    assert [column for _, column in documented] == ["etl_tstamp", "etl_tstamp"]


# --- record-level failures ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", "NotTSV"),
        (b"\n", "NotTSV"),
        (b"hello world", "NotTSV"),
        (b"a\tb", "FieldNumberMismatch(2)"),
        (PAGE_VIEW + b"\t", "FieldNumberMismatch(132)"),
        (PAGE_VIEW + b"\n" + PAGE_VIEW, "FieldNumberMismatch(261)"),
        (b"\xff" + PAGE_VIEW, "NotUtf8"),
        (PAGE_VIEW.replace(b"web", b"w\xc3b", 1), "NotUtf8"),
        (PAGE_VIEW.replace(b"web", b"\xed\xa0\x80", 1), "NotUtf8"),  # an encoded surrogate
        (PAGE_VIEW + b"\n\n", "InvalidTimestamp(true_tstamp)"),  # only ONE newline goes
    ],
)
def test_record_failures(raw: bytes, expected: str) -> None:
    assert reason(raw) == expected


def test_bad_event_carries_a_kind_for_metrics() -> None:
    with pytest.raises(BadEvent) as caught:
        parse_record(b"a\tb")
    assert caught.value.reason_kind == "FieldNumberMismatch"


def test_parse_tsv_accepts_text() -> None:
    text = PAGE_VIEW.decode() + "\r\n"
    assert parse_tsv(text).event_id == parse_record(PAGE_VIEW).event_id
    with pytest.raises(BadEvent, match="NotUtf8"):
        parse_tsv(text.replace("web", "\ud800"))


# --- atomic field validation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"event_id": ""}, "MissingEventId"),
        ({"event_id": "not-a-uuid"}, "InvalidValue(event_id)"),
        ({"collector_tstamp": ""}, "MissingCollectorTstamp"),
        ({"collector_tstamp": "2024-02-30 10:00:00.000"}, "InvalidTimestamp(collector_tstamp)"),
        ({"collector_tstamp": "yesterday"}, "InvalidTimestamp(collector_tstamp)"),
        ({"event_id": "", "collector_tstamp": ""}, "MissingEventId"),
        ({"etl_tstamp": "2023-02-29 00:00:00"}, "InvalidTimestamp(etl_tstamp)"),
        ({"etl_tstamp": "2024-11-16 24:00:00"}, "InvalidTimestamp(etl_tstamp)"),
        ({"etl_tstamp": "2024-11-16 23:59:60"}, "InvalidTimestamp(etl_tstamp)"),
        ({"etl_tstamp": "2024-11-16 13:33:22+01:00"}, "InvalidTimestamp(etl_tstamp)"),
        ({"etl_tstamp": "2024-11-16 13:33:22.1234567890"}, "InvalidTimestamp(etl_tstamp)"),
        ({"etl_tstamp": "2024-11-16"}, "InvalidTimestamp(etl_tstamp)"),
        ({"etl_tstamp": "20241116T133322"}, "InvalidTimestamp(etl_tstamp)"),
        ({"etl_tstamp": "2024-11-16 13:33:22,5"}, "InvalidTimestamp(etl_tstamp)"),
        ({"true_tstamp": "0000-01-01 00:00:00"}, "InvalidTimestamp(true_tstamp)"),
        ({"derived_tstamp": "-2024-11-16 13:33:22"}, "InvalidTimestamp(derived_tstamp)"),
        ({"txn_id": "abc"}, "InvalidValue(txn_id)"),
        ({"txn_id": "1_000"}, "InvalidValue(txn_id)"),
        ({"txn_id": " 1"}, "InvalidValue(txn_id)"),
        ({"txn_id": "2147483648"}, "InvalidValue(txn_id)"),
        ({"txn_id": "-2147483649"}, "InvalidValue(txn_id)"),
        ({"txn_id": "9" * 5000}, "InvalidValue(txn_id)"),
        ({"txn_id": "\u0663"}, "InvalidValue(txn_id)"),  # an Arabic-Indic digit
        ({"doc_width": "1.5"}, "InvalidValue(doc_width)"),
        ({"se_value": "nan"}, "InvalidValue(se_value)"),
        ({"se_value": "Infinity"}, "InvalidValue(se_value)"),
        ({"se_value": "1e999"}, "InvalidValue(se_value)"),
        ({"se_value": "9" * 400}, "InvalidValue(se_value)"),
        ({"se_value": "9" * 5000 + ".5"}, "InvalidValue(se_value)"),
        ({"se_value": "1,5"}, "InvalidValue(se_value)"),
        ({"br_cookies": "2"}, "InvalidValue(br_cookies)"),
        ({"br_cookies": "true"}, "InvalidValue(br_cookies)"),
        ({"br_cookies": "10"}, "InvalidValue(br_cookies)"),
        # The first bad field in TSV order is named.
        ({"txn_id": "x", "br_cookies": "x"}, "InvalidValue(txn_id)"),
    ],
)
def test_bad_atomic_values_reject_the_event(changes: dict[str, str], expected: str) -> None:
    assert reason(edit(PAGE_VIEW, **changes)) == expected


@pytest.mark.parametrize(
    ("field", "text", "value"),
    [
        ("txn_id", "2147483647", 2**31 - 1),
        ("txn_id", "-2147483648", -(2**31)),
        ("txn_id", "0042", 42),
        ("pp_xoffset_min", "-5", -5),
        ("se_value", "1E-7", 1e-7),
        ("se_value", "12.0", 12.0),
        ("se_value", "-0.5", -0.5),
        ("tr_total", "123456789012345678901234567890.5", 1.2345678901234568e29),
        ("geo_latitude", "37.443604", 37.443604),
        ("br_cookies", "0", False),
        ("dvce_ismobile", "1", True),
        ("etl_tstamp", "2013-11-26 00:02:05", datetime(2013, 11, 26, 0, 2, 5, tzinfo=UTC)),
        ("etl_tstamp", "2013-11-26T00:02:05.5Z",
         datetime(2013, 11, 26, 0, 2, 5, 500000, tzinfo=UTC)),
        ("etl_tstamp", "2024-02-29 01:02:03.123456",
         datetime(2024, 2, 29, 1, 2, 3, 123456, tzinfo=UTC)),
        ("etl_tstamp", "0001-01-01 00:00:00", datetime(1, 1, 1, tzinfo=UTC)),
        ("refr_device_tstamp", "2021-10-15 09:05:29.634397414",
         datetime(2021, 10, 15, 9, 5, 29, 634397, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_good_atomic_values(field: str, text: str, value: Any) -> None:
    event = parse_record(edit(PAGE_VIEW, **{FIELD_NAMES[FIELD_INDEX[field]]: text}))
    assert event.atomic(field) == value
    assert type(event.atomic(field)) is type(value)


@pytest.mark.parametrize(
    ("collector", "derived", "collector_ms", "event_ms"),
    [
        ("2021-10-15 09:05:29.634397414", "", 1634288729634, 1634288729634),
        ("2021-10-15T09:05:29Z", "2021-10-15 09:05:28.9", 1634288729000, 1634288728900),
        ("1969-12-31 23:59:59.999", "1970-01-01 00:00:00.0001", -1, 0),
    ],
)
def test_event_time_is_derived_else_collector(
    collector: str, derived: str, collector_ms: int, event_ms: int
) -> None:
    event = parse_record(edit(PAGE_VIEW, collector_tstamp=collector, derived_tstamp=derived))
    assert (event.collector_tstamp_ms, event.event_time_ms) == (collector_ms, event_ms)


def test_atomic_names() -> None:
    event = parse_record(PAGE_VIEW)
    assert event.atomic("refr_device_tstamp") is event.atomic("refr_dvce_tstamp")
    assert event.atomic("collector_tstamp") is event.atomic("collector_tstamp")  # cached
    for name in ("contexts", "unstruct_event", "derived_contexts", "nope"):
        with pytest.raises(KeyError):
            event.atomic(name)
    assert all(
        event.atomic(name) is None or event.atomic(name) != "" for name in ATOMIC_FIELD_NAMES
    )


def test_geo_location_in_lossy_json() -> None:
    event = parse_record(edit(PAGE_VIEW, geo_latitude="37.443604", geo_longitude="-122.4124"))
    shredded = event.to_shredded_json()
    assert shredded["geo_location"] == "37.443604,-122.4124"
    assert shredded["geo_latitude"] == 37.443604
    assert "geo_location" not in parse_record(PAGE_VIEW).to_shredded_json()


# --- identity -------------------------------------------------------------------------------


def test_identity_prefers_atomic_columns() -> None:
    (line,) = read_lines(README)
    event = parse_record(edit(line, event_vendor="com.acme", event_name="cart_add"))
    assert (event.event_vendor, event.event_name, event.event_version) == (
        "com.acme", "cart_add", "1-0-0",
    )  # fmt: skip
    blank = parse_record(edit(line, event_vendor="", event_name="", event_version=""))
    assert (blank.event_vendor, blank.event_name, blank.event_version) == (
        "com.snowplowanalytics.snowplow", "add_to_cart", "1-0-0",
    )  # fmt: skip
    unknown = parse_record(edit(PAGE_VIEW, event="custom", event_vendor="", event_name=""))
    assert (unknown.event_vendor, unknown.event_name, unknown.event_version) == (
        None,
        None,
        "1-0-0",
    )


# --- the JSON fields ------------------------------------------------------------------------

CONTEXTS = "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-{}"
UNSTRUCT = "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0"
WEB_PAGE_SDJ = {"schema": "iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0",
                "data": {"id": "b7272b85"}}  # fmt: skip


def sdj(schema: str, data: Any) -> str:
    return orjson.dumps({"schema": schema, "data": data}).decode()


@pytest.mark.parametrize(
    ("field", "text", "expected"),
    [
        ("contexts", "{", "InvalidJson(contexts)"),
        ("contexts", "[]", "InvalidJson(contexts)"),
        ("contexts", "null", "InvalidJson(contexts)"),
        ("contexts", '{"schema":"x"}', "InvalidJson(contexts)"),
        ("contexts", sdj(CONTEXTS.format(0), {}), "InvalidJson(contexts)"),
        ("contexts", sdj(CONTEXTS.format(0), [1]), "InvalidJson(contexts)"),
        ("contexts", sdj(CONTEXTS.format(0), [{"schema": WEB_PAGE_SDJ["schema"], "data": []}]),
         "InvalidJson(contexts)"),
        ("contexts", sdj(CONTEXTS.format(0), [{"schema": WEB_PAGE_SDJ["schema"]}]),
         "InvalidJson(contexts)"),
        ("contexts", sdj(CONTEXTS.format(0), [{"schema": "fail", "data": {}}]),
         "InvalidSchema(contexts)"),
        ("contexts", sdj(CONTEXTS.format(0), [{"schema": ["x"], "data": {}}]),
         "InvalidSchema(contexts)"),
        ("contexts", sdj("iglu:com.acme/web_page/jsonschema/0-0-1", [WEB_PAGE_SDJ]),
         "InvalidSchema(contexts)"),
        ("contexts", sdj("iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/2-0-0", []),
         "InvalidSchema(contexts)"),
        ("contexts", sdj(CONTEXTS.format("01"), []), "InvalidSchema(contexts)"),
        ("contexts", sdj(UNSTRUCT, []), "InvalidSchema(contexts)"),
        ("unstruct_event", sdj(UNSTRUCT, {"data": {}}), "InvalidSchema(unstruct_event)"),
        ("unstruct_event", sdj(UNSTRUCT, {"schema": WEB_PAGE_SDJ["schema"], "data": None}),
         "InvalidJson(unstruct_event)"),
        ("unstruct_event", sdj(UNSTRUCT, None), "InvalidJson(unstruct_event)"),
        ("unstruct_event", sdj(CONTEXTS.format(1), WEB_PAGE_SDJ), "InvalidSchema(unstruct_event)"),
        ("derived_contexts", "nope", "InvalidJson(derived_contexts)"),
        ("contexts", "[" * 201 + "]" * 201, "InvalidJson(contexts)"),
        ("contexts", sdj(CONTEXTS.format(1), [{"schema": WEB_PAGE_SDJ["schema"],
                                               "data": {"a": [[[[[[[[[[]]]]]]]]]] * 25}}]),
         "ok"),
    ],
)  # fmt: skip
def test_json_field_failures(field: str, text: str, expected: str) -> None:
    raw = edit(PAGE_VIEW, **{field: text})
    if expected == "ok":
        assert parse_record(raw).entities(WEB_PAGE)
    else:
        assert reason(raw) == expected


def test_json_nested_too_deep_is_rejected_and_the_limit_is_encodable() -> None:
    def nested(depth: int) -> str:
        data = {"a": 1}
        for _ in range(depth):
            data = {"a": data}
        return sdj(CONTEXTS.format(1), [{"schema": WEB_PAGE_SDJ["schema"], "data": data}])

    # wrapper, list, entity, then the entity data's own levels
    assert reason(edit(PAGE_VIEW, contexts=nested(197))) == "InvalidJson(contexts)"
    event = parse_record(edit(PAGE_VIEW, contexts=nested(196)))
    assert Event.from_projection(event.project(Projection(all_fields=True))).entities(WEB_PAGE)
    orjson.dumps(event.to_shredded_json())


@pytest.mark.parametrize("addition", ["0", "1", "2", "10"])
def test_any_1_0_x_contexts_wrapper(addition: str) -> None:
    event = parse_record(edit(PAGE_VIEW, contexts=sdj(CONTEXTS.format(addition), [WEB_PAGE_SDJ])))
    assert event.entities(WEB_PAGE) == [{"id": "b7272b85", "_schema_version": "1-0-0"}]


def test_empty_contexts_and_unstruct_with_empty_data() -> None:
    event = parse_record(edit(PAGE_VIEW, contexts=sdj(CONTEXTS.format(1), [])))
    assert list(event.entity_keys) == []
    ue = sdj(UNSTRUCT, {"schema": "iglu:com.acme/Thing-Done/jsonschema/3-1-4", "data": {}})
    event = parse_record(edit(PAGE_VIEW, event="unstruct", event_vendor="", unstruct_event=ue))
    assert event.unstruct_key == "unstruct_event_com_acme_thing_done_3"
    assert event.unstruct_data == {}
    assert (event.event_vendor, event.event_name, event.event_version) == (
        "com.acme", "Thing-Done", "3-1-4",
    )  # fmt: skip


def test_contexts_and_derived_contexts_are_appended() -> None:
    other = {"schema": "iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-1",
             "data": {"id": "derived"}}  # fmt: skip
    event = parse_record(
        edit(
            PAGE_VIEW,
            contexts=sdj(CONTEXTS.format(0), [WEB_PAGE_SDJ]),
            derived_contexts=sdj(CONTEXTS.format(1), [other, WEB_PAGE_SDJ]),
        )
    )
    assert [(e["id"], e["_schema_version"]) for e in event.entities(WEB_PAGE)] == [
        ("b7272b85", "1-0-0"), ("derived", "1-0-1"), ("b7272b85", "1-0-0"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "vendor", "name", "major", "expected"),
    [
        ("contexts", "com.snowplowanalytics.snowplow.ecommerce", "product", 1,
         "contexts_com_snowplowanalytics_snowplow_ecommerce_product_1"),
        ("contexts", "org.w3", "PerformanceTiming", 1, "contexts_org_w3_performance_timing_1"),
        ("contexts", "org.schema", "WebPage", 1, "contexts_org_schema_web_page_1"),
        ("contexts", "com.acme-corp", "HTTPHeader", 2, "contexts_com_acme_corp_httpheader_2"),
        ("contexts", "com.snowplowanalytics.self-desc", "schema", 1,
         "contexts_com_snowplowanalytics_self_desc_schema_1"),
        ("unstruct_event", "com.snowplowanalytics.snowplow", "link_click", 1,
         "unstruct_event_com_snowplowanalytics_snowplow_link_click_1"),
        ("unstruct_event", "com.snowplowanalytics.snowplow.ecommerce", "snowplow_ecommerce_action",
         1, "unstruct_event_com_snowplowanalytics_snowplow_ecommerce_snowplow_ecommerce_action_1"),
    ],
)  # fmt: skip
def test_shred_key(kind: str, vendor: str, name: str, major: int, expected: str) -> None:
    assert shred_key(kind, vendor, name, major) == expected


def test_shred_key_kind() -> None:
    with pytest.raises(ValueError, match="kind"):
        shred_key("derived_contexts", "com.acme", "x", 1)


def test_oracle_keys_are_our_shred_keys() -> None:
    keys = {k for row in ORACLE.values() for k in row if k.startswith(("contexts_", "unstruct_"))}
    ours = {k for line in GOOD_WIDEROW for k in parse_record(line).to_shredded_json()}
    assert keys <= ours
    assert "contexts_org_w3_performance_timing_1" in keys


def test_parse_json_is_exported() -> None:
    assert parse_json(orjson.dumps(parse_record(PAGE_VIEW).to_shredded_json())).event_id
