"""The dbt-seed converter (``tests.dbt_seeds``): every row becomes a line the real parser takes,
and the parsed event says what the CSV says."""

from __future__ import annotations

import csv
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from signals_stream.events.fields import FIELD_COUNT, FIELD_INDEX
from signals_stream.events.parse import parse_tsv, shred_key
from tests.datafiles import DATA_DIR
from tests.dbt_seeds import (
    CONTEXTS_SCHEMA,
    ECOMMERCE_SEED,
    SEED_COLUMNS,
    UNSTRUCT_SCHEMA,
    WEB_SEED,
    row_to_tsv,
    seed_event_id,
    seed_rows,
    seed_tsv,
)

_ECOM = "com.snowplowanalytics.snowplow.ecommerce"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _csv(relative: str) -> list[dict[str, str]]:
    # Read again here, so the assertions do not depend on the converter's own reading.
    with (DATA_DIR / relative).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _ms(text: str) -> int:
    parsed = datetime.fromisoformat(text)
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return (parsed - _EPOCH) // timedelta(milliseconds=1)


def _items(text: str) -> list[dict[str, Any]]:
    if not text:
        return []
    value = json.loads(text)
    flat: list[dict[str, Any]] = []
    for item in value if isinstance(value, list) else [value]:
        flat.extend(item if isinstance(item, list) else [item])
    return flat


@pytest.mark.parametrize(("seed", "rows"), [(ECOMMERCE_SEED, 834), (WEB_SEED, 160)])
def test_every_row_converts_to_a_line_the_parser_accepts(seed: str, rows: int) -> None:
    lines = seed_tsv(seed)
    assert len(lines) == len(_csv(seed)) == rows
    for line in lines:
        assert len(line.split("\t")) == FIELD_COUNT
        assert "\n" not in line
        parse_tsv(line)  # raises BadEvent otherwise


def test_conversion_is_cached_per_session() -> None:
    assert seed_tsv(ECOMMERCE_SEED) is seed_tsv(ECOMMERCE_SEED)
    assert seed_rows(WEB_SEED) is seed_rows(WEB_SEED)


def test_ecommerce_events_match_the_csv_row_by_row() -> None:
    product_key = shred_key("contexts", _ECOM, "product", 1)
    user_key = shred_key("contexts", _ECOM, "user", 1)
    action_key = shred_key("unstruct_event", _ECOM, "snowplow_ecommerce_action", 1)
    for row, line in zip(_csv(ECOMMERCE_SEED), seed_tsv(ECOMMERCE_SEED), strict=True):
        event = parse_tsv(line)
        assert event.event_id == row["event_id"]
        assert event.collector_tstamp_ms == _ms(row["collector_tstamp"])
        assert event.event_time_ms == _ms(row["derived_tstamp"])
        assert event.atomic("dvce_sent_tstamp") == datetime.fromisoformat(
            row["dvce_sent_tstamp"]
        ).replace(tzinfo=UTC)
        for name in ("app_id", "domain_userid", "domain_sessionid", "page_urlpath", "geo_city"):
            assert event.atomic(name) == (row[name] or None), name
        assert event.atomic("geo_latitude") == (
            float(row["geo_latitude"]) if row["geo_latitude"] else None
        )
        # The atomic identity is kept as the seed has it (ecommerce.tracking included).
        assert (event.event_vendor, event.event_name, event.event_version) == (
            row["event_vendor"],
            row["event_name"],
            row["event_version"],
        )
        products = _items(row["contexts_com_snowplowanalytics_snowplow_ecommerce_product_1_0_0"])
        parsed = event.entities(product_key)
        assert [p.get("id") for p in parsed] == [p["id"] for p in products]
        assert [p.get("price") for p in parsed] == [
            None if p["price"] is None else float(p["price"]) for p in products
        ]
        users = _items(row["contexts_com_snowplowanalytics_snowplow_ecommerce_user_1_0_0"])
        assert [u.get("id") for u in event.entities(user_key)] == [u["id"] for u in users]
        action = _items(
            row[
                "unstruct_event_com_snowplowanalytics_snowplow_ecommerce_snowplow_ecommerce_action_1_0_0"
            ]
        )
        if action:
            assert event.unstruct_key == action_key
            assert event.unstruct_data is not None
            assert event.unstruct_data.get("type") == action[0]["type"]
        else:
            assert event.unstruct_key is None


def test_stringified_numbers_and_booleans_become_json_values_as_trackers_send_them() -> None:
    first = seed_tsv(ECOMMERCE_SEED)[0]
    contexts = json.loads(first.split("\t")[FIELD_INDEX["contexts"]])
    product = next(
        e["data"] for e in contexts["data"] if e["schema"].endswith("/product/jsonschema/1-0-0")
    )
    # CSV: {"category": "Hats", ..., "price": "12.0", "brand": "Snowplow", "creative_id": null, ...}
    assert product == {
        "category": "Hats",
        "currency": "EUR",
        "id": "1236",
        "price": 12,
        "brand": "Snowplow",
    }
    assert type(product["price"]) is int  # JSON.stringify(12.0) == "12"
    typed: dict[str, Any] = {}
    for line in seed_tsv(ECOMMERCE_SEED):
        for entity in json.loads(line.split("\t")[FIELD_INDEX["contexts"]] or '{"data": []}')[
            "data"
        ]:
            for key in ("price", "total_value", "revenue", "step", "is_guest", "total_quantity"):
                if key in entity["data"]:
                    typed.setdefault(key, set()).add(type(entity["data"][key]))
    assert typed == {
        "price": {int, float},
        "total_value": {int, float},
        "revenue": {int, float},
        "step": {int},
        "is_guest": {bool},
        "total_quantity": {int},
    }


def test_self_describing_json_is_rebuilt_with_the_mapped_schemas() -> None:
    rows, lines = _csv(ECOMMERCE_SEED), seed_tsv(ECOMMERCE_SEED)
    mobile = next(i for i, r in enumerate(rows) if r["platform"] == "mob")
    fields = lines[mobile].split("\t")
    contexts = json.loads(fields[FIELD_INDEX["contexts"]])
    assert contexts["schema"] == CONTEXTS_SCHEMA
    assert [e["schema"] for e in contexts["data"]] == [
        f"iglu:{_ECOM}/user/jsonschema/1-0-0",
        f"iglu:{_ECOM}/cart/jsonschema/1-0-0",
        f"iglu:{_ECOM}/product/jsonschema/1-0-0",
        "iglu:com.snowplowanalytics.snowplow/client_session/jsonschema/1-0-1",
        "iglu:com.snowplowanalytics.mobile/screen/jsonschema/1-0-0",
    ]
    unstruct = json.loads(fields[FIELD_INDEX["unstruct_event"]])
    assert unstruct["schema"] == UNSTRUCT_SCHEMA
    # The atomic columns say 1-0-1 for the mobile rows; the column is named _1_0_0.
    assert unstruct["data"]["schema"] == f"iglu:{_ECOM}/snowplow_ecommerce_action/jsonschema/1-0-1"
    assert fields[FIELD_INDEX["derived_contexts"]] == ""
    # A row whose atomic vendor differs from the column's schema keeps the column's version.
    action = (
        "unstruct_event_com_snowplowanalytics_snowplow_ecommerce_snowplow_ecommerce_action_1_0_0"
    )
    tracking = next(
        i for i, r in enumerate(rows) if r["event_vendor"] == "ecommerce.tracking" and r[action]
    )
    sdj = json.loads(lines[tracking].split("\t")[FIELD_INDEX["unstruct_event"]])
    assert sdj["data"]["schema"] == f"iglu:{_ECOM}/snowplow_ecommerce_action/jsonschema/1-0-0"


def test_web_seed_enrichment_entities_go_to_derived_contexts() -> None:
    yauaa = shred_key("contexts", "nl.basjes", "yauaa_context", 1)
    spiders = shred_key("contexts", "com.iab.snowplow", "spiders_and_robots", 1)
    web_page = shred_key("contexts", "com.snowplowanalytics.snowplow", "web_page", 1)
    for row, line in zip(_csv(WEB_SEED), seed_tsv(WEB_SEED), strict=True):
        fields = line.split("\t")
        assert "yauaa_context" not in fields[FIELD_INDEX["contexts"]]
        assert "yauaa_context" in fields[FIELD_INDEX["derived_contexts"]]
        event = parse_tsv(line)
        agent = _items(row["contexts_nl_basjes_yauaa_context_1_0_0"])[0]["agentName"]
        assert event.entities(yauaa)[0]["agentName"] == agent
        assert event.entities(spiders)[0]["spiderOrRobot"] is False
        page = _items(row["contexts_com_snowplowanalytics_snowplow_web_page_1_0_0"])
        assert [e.get("id") for e in event.entities(web_page)] == [p["id"] for p in page]
        cookies = row["br_cookies"].lower()
        assert event.atomic("br_cookies") is {"true": True, "false": False}.get(cookies)


def test_web_seed_unstruct_events_and_their_versions() -> None:
    rows, lines = _csv(WEB_SEED), seed_tsv(WEB_SEED)
    elapsed = []
    for row, line in zip(rows, lines, strict=True):
        event = parse_tsv(line)
        cmp = _items(row["unstruct_event_com_snowplowanalytics_snowplow_cmp_visible_1_0_0"])
        consent = _items(
            row["unstruct_event_com_snowplowanalytics_snowplow_consent_preferences_1_0_0"]
        )
        if cmp:
            assert event.unstruct_data == {"elapsed_time": json.loads(cmp[0]["elapsed_time"])}
            elapsed.append(event.unstruct_data["elapsed_time"])
        if consent:
            sdj = json.loads(line.split("\t")[FIELD_INDEX["unstruct_event"]])
            assert sdj["data"]["schema"].endswith(f"/jsonschema/{row['event_version']}")
            assert event.unstruct_data["consent_scopes"] == consent[0]["consent_scopes"]
        if not cmp and not consent:
            assert event.unstruct_key is None
    assert {type(v) for v in elapsed} == {int, float}  # "20" -> 20, "1.5" -> 1.5


def test_pseudonymised_event_ids_become_stable_distinct_uuids() -> None:
    rows, lines = _csv(WEB_SEED), seed_tsv(WEB_SEED)
    by_seed: dict[str, set[str]] = {}
    for row, line in zip(rows, lines, strict=True):
        event_id = parse_tsv(line).event_id
        assert _UUID.fullmatch(event_id.lower())
        by_seed.setdefault(row["event_id"], set()).add(event_id)
        if _UUID.fullmatch(row["event_id"].lower()):
            assert event_id == row["event_id"]
    assert all(len(ids) == 1 for ids in by_seed.values())  # the seed's dupes stay dupes
    converted = {next(iter(ids)) for ids in by_seed.values()}
    assert len(converted) == len(by_seed)  # distinct seed ids stay distinct
    assert sum(1 for r in rows if not _UUID.fullmatch(r["event_id"].lower())) == 25
    assert seed_event_id("0464e31b16feca1840e3196aa14cfc56") == seed_event_id(
        "0464e31b16feca1840e3196aa14cfc56"
    )


def test_timestamps_are_written_with_three_fraction_digits() -> None:
    tstamps = [i for name, i in FIELD_INDEX.items() if name.endswith("_tstamp")]
    pattern = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}")
    seen = 0
    for line in (*seed_tsv(ECOMMERCE_SEED), *seed_tsv(WEB_SEED)):
        fields = line.split("\t")
        for i in tstamps:
            if fields[i]:
                assert pattern.fullmatch(fields[i]), fields[i]
                seen += 1
    cells = sum(
        1
        for seed in (ECOMMERCE_SEED, WEB_SEED)
        for row in _csv(seed)
        for name, text in row.items()
        if name.endswith("_tstamp") and name != "load_tstamp" and text
    )
    assert seen == cells
    row = dict(seed_rows(ECOMMERCE_SEED)[0])
    row["derived_tstamp"] = "2022-12-22 13:25:47+00:00"  # the seed's form without a fraction
    assert row_to_tsv(row).split("\t")[FIELD_INDEX["derived_tstamp"]] == "2022-12-22 13:25:47.000"


def test_null_members_are_dropped() -> None:
    for line in seed_tsv(ECOMMERCE_SEED):
        for index in (FIELD_INDEX["contexts"], FIELD_INDEX["unstruct_event"]):
            text = line.split("\t")[index]
            assert ":null" not in text


def test_rows_enrich_could_not_have_written_are_refused() -> None:
    row = dict(seed_rows(ECOMMERCE_SEED)[0])
    with pytest.raises(ValueError, match="no schema"):
        row_to_tsv({**row, "contexts_com_acme_thing_1_0_0": "[]"})
    with pytest.raises(ValueError, match="unknown seed column"):
        row_to_tsv({**row, "not_a_field": "x"})
    with pytest.raises(ValueError, match="tab or line break"):
        row_to_tsv({**row, "page_title": "a\tb"})
    with pytest.raises(ValueError, match="more than one"):
        cmp_visible = "unstruct_event_com_snowplowanalytics_snowplow_cmp_visible_1_0_0"
        row_to_tsv({**row, cmp_visible: '{"elapsed_time": 1}'})
    assert set(SEED_COLUMNS) >= {c for c in row if c.startswith(("contexts_", "unstruct_"))}
