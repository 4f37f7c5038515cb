from __future__ import annotations

import re
import uuid
from collections import Counter, defaultdict
from datetime import datetime
from itertools import islice
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

from signals_stream.devtools.generator import (
    GeneratedEvent,
    GeneratorConfig,
    generate_events,
    generate_lines,
    visitor_ids,
)
from signals_stream.events.fields import FIELD_COUNT, FIELD_INDEX
from signals_stream.events.parse import Event, parse_record

START_MS = 1_700_000_000_000
CONFIG = GeneratorConfig(users=120, seed=7, start_ms=START_MS)
SESSION_TIMEOUT_MS = 30 * 60_000

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}")
ACTION = "unstruct_event_com_snowplowanalytics_snowplow_ecommerce_snowplow_ecommerce_action_1"
ECOM = "contexts_com_snowplowanalytics_snowplow_ecommerce_"
WEB_PAGE = "contexts_com_snowplowanalytics_snowplow_web_page_1"
CLIENT_SESSION = "contexts_com_snowplowanalytics_snowplow_client_session_1"
IDENTITY = {
    "page_view": ("com.snowplowanalytics.snowplow", "page_view", "jsonschema", "1-0-0"),
    "page_ping": ("com.snowplowanalytics.snowplow", "page_ping", "jsonschema", "1-0-0"),
    "struct": ("com.google.analytics", "event", "jsonschema", "1-0-0"),
}


class Row:
    """A generated event with its parsed form and its raw fields."""

    def __init__(self, generated: GeneratedEvent) -> None:
        self.generated = generated
        self.fields = generated.line.decode("utf-8").split("\t")
        self.event: Event = parse_record(generated.line)

    def __getitem__(self, name: str) -> str:
        return self.fields[FIELD_INDEX[name]]

    def action(self) -> str | None:
        data = self.event.unstruct_data if self.event.unstruct_key == ACTION else None
        return None if data is None else data["type"]

    def entities(self, name: str) -> list[dict[str, Any]]:
        key = name if name.startswith("contexts_") else f"{ECOM}{name}_1"
        return self.event.entities(key)


@pytest.fixture(scope="module")
def rows() -> list[Row]:
    return [Row(generated) for generated in islice(generate_events(CONFIG), 8_000)]


@pytest.fixture(scope="module")
def by_user(rows: list[Row]) -> dict[str, list[Row]]:
    users: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        users[row["domain_userid"]].append(row)
    return users


def _ms(row: Row, name: str) -> int:
    value: datetime = row.event.atomic(name)
    return int(value.timestamp() * 1000)


def test_lines_are_enriched_tsv_that_the_parser_accepts(rows: list[Row]) -> None:
    keys = set()
    for row in rows:
        line = row.generated.line
        assert b"\n" not in line and b"\r" not in line
        assert len(row.fields) == FIELD_COUNT
        assert row.event.event_id == row["event_id"] == str(uuid.UUID(row["event_id"]))
        assert row.event.event_time_ms == row.generated.event_time_ms
        assert row.generated.domain_userid == row["domain_userid"]
        key = uuid.UUID(row.generated.key.decode())
        assert key.version == 4 and str(key) != row["event_id"]
        keys.add(key)
        for name in ("app_id", "name_tracker", "v_tracker", "v_collector", "v_etl"):
            assert row[name]
        assert row["platform"] == "web"
        assert row["event_fingerprint"] and row["network_userid"] and row["useragent"]
        assert row["geo_country"] and float(row["geo_latitude"]) and float(row["geo_longitude"])
    assert len(keys) == len(rows)


def test_timestamps_follow_enrich(rows: list[Row]) -> None:
    for row in rows:
        for name in ("etl_tstamp", "collector_tstamp", "dvce_created_tstamp", "dvce_sent_tstamp",
                     "derived_tstamp"):  # fmt: skip
            assert TIMESTAMP.fullmatch(row[name]), (name, row[name])
        assert row["true_tstamp"] == row["refr_dvce_tstamp"] == ""
        collector, created = _ms(row, "collector_tstamp"), _ms(row, "dvce_created_tstamp")
        sent = _ms(row, "dvce_sent_tstamp")
        assert created < sent
        # Enrich's getDerivedTimestamp: collector - (dvce_sent - dvce_created).
        assert _ms(row, "derived_tstamp") == collector - (sent - created)
        assert _ms(row, "etl_tstamp") > collector


def test_event_identity_and_json_wrappers_are_set_as_enrich_does(rows: list[Row]) -> None:
    for row in rows:
        header = tuple(row[n] for n in ("event_vendor", "event_name", "event_format",
                                        "event_version"))  # fmt: skip
        contexts = orjson.loads(row["contexts"])
        assert contexts["schema"] == (
            "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-1"
        )
        if row["event"] == "unstruct":
            unstruct = orjson.loads(row["unstruct_event"])
            assert unstruct["schema"] == (
                "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0"
            )
            vendor, name, _, version = unstruct["data"]["schema"][len("iglu:") :].split("/")
            assert header == (vendor, name, "jsonschema", version)
        else:
            assert header == IDENTITY[row["event"]]
            assert row["unstruct_event"] == ""
        assert (row["se_category"] != "") == (row["event"] == "struct")
        assert (row["pp_yoffset_max"] != "") == (row["event"] == "page_ping")


def test_page_url_fields_are_the_split_url(rows: list[Row]) -> None:
    for row in rows:
        url = urlsplit(row["page_url"])
        assert (url.scheme, url.hostname, url.path, url.query) == (
            row["page_urlscheme"], row["page_urlhost"], row["page_urlpath"], row["page_urlquery"]
        )  # fmt: skip
        assert row["page_urlport"] == "443" and row["page_title"]
        if row["page_referrer"]:
            refr = urlsplit(row["page_referrer"])
            assert (refr.scheme, refr.hostname, refr.path, refr.query) == (
                row["refr_urlscheme"], row["refr_urlhost"], row["refr_urlpath"],
                row["refr_urlquery"],
            )  # fmt: skip
            internal = refr.hostname == row["page_urlhost"]
            assert (row["refr_medium"] == "internal") == internal
        if "utm_medium=" in row["page_urlquery"]:
            assert row["mkt_medium"] and row["mkt_source"] and row["mkt_campaign"]
        if "gclid=" in row["page_urlquery"]:
            assert row["mkt_clickid"] in row["page_urlquery"]


def test_web_page_and_client_session_entities_tie_events_together(
    by_user: dict[str, list[Row]],
) -> None:
    for duid, events in by_user.items():
        page_view_id = None
        for index, row in enumerate(events):
            (web_page,) = row.entities(WEB_PAGE)
            if row["event"] == "page_view":
                page_view_id = web_page["id"]
            else:  # pings, clicks and actions belong to the preceding page view
                assert web_page["id"] == page_view_id
            (session,) = row.entities(CLIENT_SESSION)
            assert session["userId"] == duid
            assert session["sessionId"] == row["domain_sessionid"]
            assert session["sessionIndex"] == int(row["domain_sessionidx"])
            assert session["eventIndex"] >= 1
            if session["eventIndex"] == 1:
                assert row["event"] == "page_view" and session["firstEventId"] == row["event_id"]
            elif index:
                previous = events[index - 1].entities(CLIENT_SESSION)[0]
                assert session["eventIndex"] == previous["eventIndex"] + 1
                assert session["firstEventId"] == previous["firstEventId"]


def test_user_id_and_user_entity_appear_after_a_login(by_user: dict[str, list[Row]]) -> None:
    logged_in_users = 0
    for events in by_user.values():
        first = next((i for i, row in enumerate(events) if row["user_id"]), None)
        for row in events:
            users = row.entities("user")
            assert len(users) == (1 if row["user_id"] else 0)
            if row["user_id"]:
                assert re.fullmatch(r"U\d{5}", row["user_id"])
                assert users[0]["id"] == row["user_id"] and users[0]["is_guest"] is False
        assert len({row["user_id"] for row in events if row["user_id"]}) <= 1  # one account
        if first is not None:
            logged_in_users += 1
            login = events[first]
            assert (login["se_category"], login["se_action"]) == ("auth", "login")
    assert logged_in_users > 0


def test_ecommerce_entities_are_complete_and_carts_add_up(by_user: dict[str, list[Row]]) -> None:
    for events in by_user.values():
        cart: Counter[str] = Counter()
        prices: dict[str, float] = {}
        for row in events:
            action = row.action()
            if action is None:
                continue
            products = row.entities("product")
            for product in products:
                assert {"id", "name", "category", "price", "currency"} <= product.keys()
                assert isinstance(product["price"], float) and product["currency"] == "USD"
                prices[product["id"]] = product["price"]
            if action in ("list_view", "list_click"):
                assert products and all(p["position"] >= 1 for p in products)
                assert row.event.unstruct_data["name"].startswith("category:")
            elif action == "product_view":
                assert len(products) == 1
            elif action in ("add_to_cart", "remove_from_cart"):
                (product,) = products
                sign = 1 if action == "add_to_cart" else -1
                cart[product["id"]] += sign * product["quantity"]
                assert cart[product["id"]] >= 0
            elif action == "transaction":
                (transaction,) = row.entities("transaction")
                ordered = {p["id"]: p["quantity"] for p in products}
                assert ordered == {k: q for k, q in cart.items() if q}
                assert transaction["total_quantity"] == sum(ordered.values())
                subtotal = sum(prices[k] * q for k, q in ordered.items())
                expected = subtotal + transaction["tax"] + transaction["shipping"]
                assert transaction["revenue"] == pytest.approx(expected, abs=0.011)
                assert transaction["transaction_id"] and transaction["payment_method"]
                cart.clear()
            if action in ("add_to_cart", "remove_from_cart", "checkout_step"):
                (cart_entity,) = row.entities("cart")
                total = sum(prices[k] * q for k, q in cart.items())
                assert cart_entity["total_value"] == pytest.approx(total, abs=0.011)
            if action == "checkout_step":
                assert row.entities("checkout_step")[0]["step"] in (1, 2, 3)


def test_the_funnel_narrows(rows: list[Row]) -> None:
    actions = Counter(row.action() for row in rows)
    steps = Counter(
        row.entities("checkout_step")[0]["step"] for row in rows if row.action() == "checkout_step"
    )
    assert actions["list_view"] > 0 and actions["list_click"] > 0
    assert actions["product_view"] > 3 * actions["add_to_cart"]
    assert actions["add_to_cart"] > 2 * actions["remove_from_cart"] > 0
    assert actions["add_to_cart"] > steps[1] >= steps[2] >= steps[3] >= actions["transaction"] > 0
    events = Counter(row["event"] for row in rows)
    assert events["page_ping"] > events["page_view"] > events["struct"] > 0


def test_times_are_ordered_and_sessions_are_separated(
    rows: list[Row], by_user: dict[str, list[Row]]
) -> None:
    times = [row.generated.event_time_ms for row in rows]
    assert times == sorted(times)  # interleaved across users, in event-time order
    assert START_MS <= times[0] and len(by_user) > 50
    assert sum(len({r["domain_sessionid"] for r in events}) > 1 for events in by_user.values()) > 20
    for events in by_user.values():
        for previous, row in zip(events, events[1:], strict=False):
            gap = row.generated.event_time_ms - previous.generated.event_time_ms
            assert gap > 0
            if row["domain_sessionid"] == previous["domain_sessionid"]:
                assert gap < SESSION_TIMEOUT_MS
                if row["event"] == previous["event"] == "page_ping":
                    assert gap >= 9_700  # heartbeats every ~10 s, some skipped
            else:
                assert gap > SESSION_TIMEOUT_MS
                assert int(row["domain_sessionidx"]) == int(previous["domain_sessionidx"]) + 1
                assert row["event"] == "page_view"


def test_a_seed_fixes_the_stream() -> None:
    first = list(generate_lines(CONFIG, 300))
    assert len(first) == 300
    assert list(generate_lines(CONFIG, 300)) == first
    other = GeneratorConfig(users=120, seed=8, start_ms=START_MS)
    assert list(generate_lines(other, 300)) != first


def test_start_ms_and_arrival_window_bound_the_first_sessions() -> None:
    config = GeneratorConfig(users=30, seed=1, start_ms=START_MS, arrival_window_ms=60_000)
    first_seen: dict[str, int] = {}
    for event in islice(generate_events(config), 2_000):
        first_seen.setdefault(event.domain_userid, event.event_time_ms)
    assert len(first_seen) == 30
    assert all(START_MS <= t < START_MS + 60_000 for t in first_seen.values())


def test_live_mode_stamps_events_with_the_clock() -> None:
    now = [1_800_000_000_000]

    def clock() -> int:
        now[0] += 7
        return now[0]

    live = GeneratorConfig(users=40, seed=3, live=True, clock=clock)
    simulated = GeneratorConfig(users=40, seed=3, start_ms=START_MS)
    last: dict[str, int] = {}
    recent = 0
    for event, twin in zip(
        islice(generate_events(live), 1_500), generate_events(simulated), strict=False
    ):
        # Stamped at generation, minus the send and enrich delays (a minute when queued offline).
        assert now[0] - 62_000 < event.event_time_ms <= now[0]
        recent += now[0] - event.event_time_ms < 2_000
        assert event.event_time_ms > last.get(event.domain_userid, 0)
        last[event.domain_userid] = event.event_time_ms
        # Same visitors, same events: only the timestamps differ.
        assert event.key == twin.key and event.domain_userid == twin.domain_userid
        assert parse_record(event.line).event_id == parse_record(twin.line).event_id
    assert recent > 0.9 * 1_500


def test_shopping_intent_follows_ecommerce_share() -> None:
    def adds(share: float) -> int:
        config = GeneratorConfig(users=60, seed=5, start_ms=START_MS, ecommerce_share=share)
        return sum(b"add_to_cart" in line for line in generate_lines(config, 4_000))

    assert adds(0.0) == 0
    assert adds(0.9) > 2 * adds(0.2) > 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"users": 0},
        {"ecommerce_share": 1.5},
        {"registered_share": -0.1},
        {"session_gap_mean_ms": 0},
    ],
)
def test_invalid_configs_are_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        GeneratorConfig(**kwargs)


def test_visitor_ids_are_the_users_the_events_come_from() -> None:
    config = GeneratorConfig(users=30, seed=5)
    ids = visitor_ids(config)
    assert len(set(ids)) == 30
    events = generate_events(config)
    seen = {next(events).domain_userid for _ in range(6000)}
    assert seen == set(ids)  # every visitor shows up, and no one else
    # The TSV's own domain_userid field (15) agrees with the event's.
    line = next(generate_events(config)).line.split(b"\t")
    assert line[15].decode() in ids
