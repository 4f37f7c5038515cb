"""Property tests: whatever the bytes, parsing yields an Event or a BadEvent, and an Event works.

Inputs are arbitrary bytes, and real sample lines (TSV and JSON form) with tabs deleted or
inserted, bytes flipped, truncations, and fields or JSON fields replaced by junk.
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signals_stream.errors import BadEvent
from signals_stream.events.fields import ATOMIC_FIELD_NAMES, FIELD_COUNT, JSON_FIELDS
from signals_stream.events.parse import Event, Projection, parse_json, parse_record
from tests.datafiles import read_lines

LINES = [
    *read_lines("kafka-live-viewer-profiles/micro.1.tsv")[:12],
    *read_lines("snowplow-golang-analytics-sdk/readme-quickstart-add_to_cart.tsv"),
    *read_lines("snowplow-rdb-loader/widerow-json.input-events.tsv")[:6],
    *read_lines("snowplow-rdb-loader/input-events-custom-unstruct.tsv")[:6],
    *read_lines("snowplow-rdb-loader/invalidtimestamp.input-events.tsv"),
]
JSON_DOCS = [
    orjson.dumps(parse_record(line).to_shredded_json())
    for line in LINES
    if line.count(b"\t") == 130 and b"-2006-" not in line and b"0000-01-01" not in line
]
TYPICAL = Projection(
    atomic=frozenset({"user_id", "domain_userid", "se_value", "br_cookies", "etl_tstamp"}),
    entity_keys=frozenset({"contexts_com_snowplowanalytics_snowplow_web_page_1"}),
)
EVERYTHING = Projection(all_fields=True)
FAST = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
field_text = st.sampled_from(
    ["", "0", "1", "-1", "1.5", "1E-7", "2147483648", "nan", "x", "\u0663", " ", "{", "{}",
     "2024-02-29 00:00:00", "2023-02-29 00:00:00", "2024-11-16T13:33:21.123456789Z",
     "0000-01-01 00:00:00", "-2006-10-15 09:06:35", "c0ff6a45-1826-479f-9efe-1ac1f10948d5"]
) | st.text(max_size=20)  # fmt: skip


def exercise(event: Event) -> None:
    """Every accessor of a parsed event works; projections round-trip."""
    for name in ATOMIC_FIELD_NAMES:
        event.atomic(name)
    for key in list(event.entity_keys):
        assert all(isinstance(e, dict) for e in event.entities(key))
    shredded = event.to_shredded_json()
    orjson.dumps(shredded)
    again = Event.from_projection(event.project(EVERYTHING))
    assert again.to_shredded_json() == shredded
    assert (again.event_id, again.event_time_ms) == (event.event_id, event.event_time_ms)
    Event.from_projection(event.project(TYPICAL)).atomic("user_id")


def outcome(raw: bytes) -> Event | BadEvent:
    try:
        event = parse_record(raw)
    except BadEvent as error:
        assert error.reason
        return error
    exercise(event)
    return event


@FAST
@given(st.binary(max_size=400))
def test_arbitrary_bytes(raw: bytes) -> None:
    outcome(raw)


@FAST
@given(st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_arbitrary_text(raw: bytes) -> None:
    outcome(raw)


@FAST
@given(st.sampled_from(LINES), st.data())
def test_mutated_real_lines(line: bytes, data: st.DataObject) -> None:
    raw = bytearray(line)
    for _ in range(data.draw(st.integers(1, 3))):
        kind = data.draw(
            st.sampled_from(["delete_tab", "insert_tab", "flip", "truncate", "insert"])
        )
        at = data.draw(st.integers(0, max(len(raw) - 1, 0)))
        if kind == "delete_tab" and b"\t" in raw:
            del raw[raw.index(b"\t", at) if b"\t" in raw[at:] else raw.index(b"\t")]
        elif kind == "insert_tab":
            raw[at:at] = b"\t"
        elif kind == "flip" and raw:
            raw[at] ^= data.draw(st.integers(1, 255))
        elif kind == "truncate":
            del raw[at:]
        elif kind == "insert":
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=8))
    outcome(bytes(raw))


@FAST
@given(st.sampled_from(LINES), st.integers(0, FIELD_COUNT - 1), field_text)
def test_real_lines_with_a_junk_field(line: bytes, index: int, text: str) -> None:
    fields = line.decode().split("\t")
    if len(fields) == FIELD_COUNT:
        fields[index] = text.replace("\t", " ").replace("\n", " ")
    outcome("\t".join(fields).encode("utf-8", "surrogatepass"))


@FAST
@given(st.sampled_from(LINES), st.sampled_from(JSON_FIELDS), st.data())
def test_real_lines_with_corrupt_json_fields(line: bytes, index: int, data: st.DataObject) -> None:
    fields = line.decode().split("\t")
    if len(fields) != FIELD_COUNT:
        return
    original = fields[index] or '{"schema":"x","data":[]}'
    how = data.draw(st.sampled_from(["char", "value", "data", "entity"]))
    if how == "char":
        at = data.draw(st.integers(0, len(original) - 1))
        fields[index] = (
            original[:at] + data.draw(st.sampled_from('{}[]":,x0 \\')) + original[at + 1 :]
        )
    elif how == "value":
        fields[index] = orjson.dumps(data.draw(json_values)).decode()
    else:
        wrapper = orjson.loads(original) if original.startswith("{") else {}
        junk = data.draw(json_values)
        if how == "entity" and isinstance(wrapper.get("data"), list) and wrapper["data"]:
            wrapper["data"][0] = {"schema": wrapper["data"][0].get("schema"), "data": junk}
        elif isinstance(wrapper, dict):
            wrapper["data"] = junk
        fields[index] = orjson.dumps(wrapper).decode()
    outcome("\t".join(fields).encode())


@FAST
@given(
    st.sampled_from(JSON_DOCS),
    st.sampled_from([*ATOMIC_FIELD_NAMES, "contexts", "unstruct_event", "derived_contexts",
                     "contexts_com_acme_x_1", "unstruct_event_com_acme_x_1", "geo_location",
                     "refr_device_tstamp", "contexts_x"]) | st.text(max_size=10),
    json_values,
)  # fmt: skip
def test_json_form_with_a_junk_key(doc: bytes, key: str, value: Any) -> None:
    record = orjson.loads(doc)
    record[key] = value
    outcome(orjson.dumps(record))
    try:
        parse_json(orjson.dumps(record).decode())
    except BadEvent:
        pass
