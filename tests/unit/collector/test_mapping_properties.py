"""Fuzz: whatever the tracker sends, the mapping gives a BadEvent or a line the engine parses.

Inputs are arbitrary parameter maps (known names with junk, numbers, unknown names) and real
tracker-shaped events with one parameter replaced or its JSON mangled.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signals_stream.collector.mapping import (
    EVENT_TYPES,
    PLAIN_FIELDS,
    enriched_fields,
    enriched_tsv,
    payload_events,
)
from signals_stream.errors import BadEvent
from signals_stream.events.fields import FIELD_COUNT
from signals_stream.events.parse import parse_tsv
from tests.unit.collector.test_mapping import CONTEXT

FAST = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NAMES = [
    *PLAIN_FIELDS, "e", "eid", "p", "vid", "tid", "ti_qu", "pp_mix", "pp_may", "se_va", "tr_tt",
    "cookie", "f_pdf", "res", "vp", "ds", "dtm", "stm", "ttm", "url", "refr", "nuid", "tnuid",
    "ua", "ip", "cx", "co", "ue_px", "ue_pr", "unknown",
]  # fmt: skip
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)  # fmt: skip
texts = st.sampled_from(
    ["", "0", "1", "-1", "1.5", "1x1", "0x0", "99999999999x1", "1796637600000", "\t", "\n",
     "\x00", "\ud800", "{}", "[]", "pv", "ue", "web", "http://h:99999/", "http://[::1]:80/p?q#f",
     "https://x.test/?utm_source=a&utm_source=b", "c6ef3124-b53a-4b13-a233-0088f79dcbcb"]
) | st.text(max_size=30)  # fmt: skip
values = texts | st.integers() | st.floats() | st.booleans() | st.none() | json_values
param_maps = st.dictionaries(st.sampled_from(NAMES) | st.text(max_size=6), values, max_size=12)

SP = "iglu:com.snowplowanalytics.snowplow/"
SDJ_ENTITY = {"schema": "iglu:com.acme/thing/jsonschema/1-0-0", "data": {"a": 1}}
REAL = {
    "e": "ue",
    "eid": "c6ef3124-b53a-4b13-a233-0088f79dcbcb",
    "p": "web",
    "duid": "0c4f2a4e-7e7b-4b8e-a1b1-7b4c1d3e9f01",
    "url": "http://localhost:9090/demo/",
    "dtm": "1796637600000",
    "stm": "1796637600100",
    "co": orjson.dumps(
        {"schema": SP + "contexts/jsonschema/1-0-0", "data": [SDJ_ENTITY]}
    ).decode(),
    "ue_pr": orjson.dumps(
        {"schema": SP + "unstruct_event/jsonschema/1-0-0", "data": SDJ_ENTITY}
    ).decode(),
}  # fmt: skip


def check(params: dict[str, Any]) -> None:
    """The property: BadEvent, or a 131-field line the engine parses."""
    try:
        line = enriched_tsv(params, CONTEXT)
    except BadEvent:
        return
    assert line.count("\t") == FIELD_COUNT - 1 and "\n" not in line
    event = parse_tsv(line.encode("utf-8"))  # must not raise: the collector accepted it
    assert event.event_id
    assert enriched_fields(params, CONTEXT)["event"] in EVENT_TYPES.values()


@FAST
@given(param_maps)
def test_arbitrary_parameters(params: dict[str, Any]) -> None:
    check(params)


@FAST
@given(st.sampled_from(sorted(REAL)), values, st.sampled_from(sorted(EVENT_TYPES)))
def test_real_event_with_one_parameter_replaced(name: str, value: Any, code: str) -> None:
    check({**REAL, "e": code, name: value})


@FAST
@given(json_values, st.sampled_from(["co", "ue_pr", "cx", "ue_px"]))
def test_arbitrary_json_in_the_json_parameters(doc: Any, name: str) -> None:
    text = orjson.dumps(doc).decode()
    if name.endswith("x"):
        text = base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
    check({**REAL, name: text})


@FAST
@given(st.binary(max_size=200) | json_values.map(orjson.dumps))
def test_arbitrary_bodies(body: bytes) -> None:
    try:
        events = payload_events(body)
    except BadEvent:
        return
    for params in events:
        check(params)
