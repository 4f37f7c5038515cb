"""Attribute criteria: the 10 operators, SQL null and LIKE semantics, all/any."""

from __future__ import annotations

from typing import Any

import pytest

from signals_stream.definitions import (
    OPERATORS,
    Criteria,
    Criterion,
    compile_criteria,
    like_to_regex,
)
from signals_stream.definitions.criteria import compile_criterion

from .helpers import make_event, tsv_events

ACME = "iglu:com.acme/item/jsonschema/1-0-0"
EVENT = make_event(
    page_url="https://shop.example/product/42?x=1",
    page_referrer="",  # empty TSV/JSON text reads as null
    tr_total=12.5,
    dvce_screenwidth=1600,
    br_cookies=True,
    derived_tstamp="2024-03-15T10:20:30.123Z",
    entities=[(ACME, {"sku": "A-1", "qty": 3, "price": "9.90", "note": "50%_off",
                      "tags": ["x", "y"], "gone": None, "path": "C:\\tmp", "multi": "a\nb"})],
)  # fmt: skip


def atomic(name: str) -> dict:
    return {"type": "atomic", "name": name}


def item(path: str) -> dict:
    return {"type": "entity", "vendor": "com.acme", "name": "item", "major_version": 1,
            "path": path}  # fmt: skip


URL, TOTAL, WIDTH = atomic("page_url"), atomic("tr_total"), atomic("dvce_screenwidth")
CASES: list[tuple[dict, str, Any, bool]] = [
    # =
    (URL, "=", "https://shop.example/product/42?x=1", True),
    (URL, "=", "https://shop.example/", False),
    (TOTAL, "=", 12.5, True),
    (WIDTH, "=", 1600, True),
    (WIDTH, "=", 1600.0, True),
    (WIDTH, "=", "1600", True),  # numeric string vs typed number
    (item("qty"), "=", "3", True),
    (item("price"), "=", 9.9, True),  # numeric-looking string vs number
    (item("sku"), "=", 1, False),  # not a number: cannot compare
    (atomic("br_cookies"), "=", True, True),
    (atomic("br_cookies"), "=", "true", True),
    (atomic("br_cookies"), "=", 1, False),  # booleans never equal numbers
    (atomic("derived_tstamp"), "=", "2024-03-15T10:20:30.123Z", True),
    (atomic("derived_tstamp"), "=", "2024-03-15T11:20:30.123+01:00", True),
    (item("tags"), "=", ["x", "y"], True),
    (item("tags"), "=", ["y", "x"], False),
    (atomic("page_referrer"), "=", "", False),  # null = '' is not true
    (item("gone"), "=", "x", False),
    # !=
    (URL, "!=", "https://shop.example/", True),
    (TOTAL, "!=", 12.5, False),
    (atomic("page_referrer"), "!=", "", False),  # the quickstart's "non-empty referrer"
    (item("sku"), "!=", 5, True),  # incomparable values are different
    (item("tags"), "!=", ["x"], True),
    # ordering
    (TOTAL, ">", 10, True),
    (TOTAL, ">", 12.5, False),
    (TOTAL, ">=", 12.5, True),
    (TOTAL, "<", "13", True),
    (TOTAL, "<=", 12, False),
    (item("price"), ">", 9, True),
    (item("sku"), ">", "A-0", True),  # strings order lexically
    (item("sku"), "<", 5, False),
    (atomic("derived_tstamp"), ">", "2024-03-15T00:00:00Z", True),
    (atomic("derived_tstamp"), "<", "2024-03-15", False),
    (atomic("derived_tstamp"), "<", 5, False),
    (atomic("page_referrer"), "<", "z", False),
    (item("tags"), ">", "a", False),
    # like
    (URL, "like", "%/product%", True),
    (URL, "like", "%/product", False),  # anchored at both ends
    (URL, "like", "https://shop.example/product/__?x=1", True),
    (URL, "like", "https://shop.example/product/_?x=1", False),
    (URL, "like", "%PRODUCT%", False),  # case-sensitive
    (URL, "like", "%.example%", True),
    (item("note"), "like", "50\\%\\_off", True),
    (item("note"), "like", "50\\%x%", False),
    (item("path"), "like", "C:\\\\tmp", True),
    (item("multi"), "like", "a%b", True),
    (item("qty"), "like", "3", True),  # numbers are cast to text
    (atomic("page_referrer"), "like", "%", False),
    # in
    (item("sku"), "in", ["A-1", "B-2"], True),
    (item("sku"), "in", ["B-2"], False),
    (item("qty"), "in", [1, 2, 3], True),
    (item("qty"), "in", ["3"], True),
    (item("price"), "in", [9.9, 1.5], True),
    (WIDTH, "in", [1600.0], True),
    (atomic("br_cookies"), "in", [True], True),
    (atomic("br_cookies"), "in", [1], False),
    (atomic("page_referrer"), "in", [""], False),
    # is null / is not null
    (atomic("page_referrer"), "is null", None, True),
    (item("gone"), "is null", None, True),
    (item("missing"), "is null", None, True),
    (URL, "is null", None, False),
    (URL, "is not null", None, True),
    (atomic("user_id"), "is not null", None, False),
]


IDS = [f"{p.get('path', p['name'])} {o} {v!r}" for p, o, v, _ in CASES]


@pytest.mark.parametrize(("prop", "operator", "value", "expected"), CASES, ids=IDS)
def test_operator(prop: dict, operator: str, value: Any, expected: bool) -> None:
    criterion = Criterion.parse({"property": prop, "operator": operator, "value": value})
    assert compile_criterion(criterion)(EVENT) is expected


def test_every_operator_is_covered() -> None:
    assert set(OPERATORS) == {op for _, op, _, _ in CASES}
    assert len(OPERATORS) == 10


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("%", "", True),
        ("_", "", False),
        ("a%", "abc", True),
        ("%c", "abc", True),
        ("a_c", "abc", True),
        ("a_c", "abbc", False),
        ("a.c", "abc", False),  # regex characters are literal
        ("(a)+[b]", "(a)+[b]", True),
        ("^a$", "^a$", True),
        ("100\\%", "100%", True),
        ("100\\%", "1000", False),
        ("a\\_b", "a_b", True),
        ("a\\_b", "axb", False),
        ("trailing\\", "trailing\\", True),
        ("%", "line\nbreak", True),
    ],
)
def test_like_to_regex(pattern: str, text: str, matches: bool) -> None:
    assert (like_to_regex(pattern).fullmatch(text) is not None) is matches


def crit(prop: dict, operator: str, value: Any = None) -> dict:
    return {"property": prop, "operator": operator, **({} if value is None else {"value": value})}


YES, NO = crit(TOTAL, ">", 10), crit(TOTAL, "<", 10)
COMBINATIONS = [
    (None, True),
    ({}, True),
    ({"all": []}, True),
    ({"any": []}, True),  # an empty block imposes nothing
    ({"all": [YES]}, True),
    ({"all": [YES, NO]}, False),
    ({"any": [NO, YES]}, True),
    ({"any": [NO, NO]}, False),
    ({"all": [YES], "any": [NO, YES]}, True),
    ({"all": [YES], "any": [NO]}, False),  # both blocks must hold
    ({"all": [NO], "any": [YES]}, False),
]


@pytest.mark.parametrize(("criteria", "expected"), COMBINATIONS)
def test_all_and_any(criteria: dict | None, expected: bool) -> None:
    compiled = compile_criteria(None if criteria is None else Criteria.parse(criteria))
    assert compiled(EVENT) is expected


def test_calculated_and_date_part_properties_in_criteria() -> None:
    hour = {**atomic("derived_tstamp"), "date_part": "hour_of_day"}
    both = {"type": "calculated", "operation": "concat", "separator": "-",
            "properties": [item("sku"), item("qty")]}  # fmt: skip
    criteria = Criteria.parse({"all": [crit(hour, ">=", 9), crit(hour, "<", 17),
                                       crit(both, "=", "A-1-3")]})  # fmt: skip
    assert compile_criteria(criteria)(EVENT) is True


def test_criteria_on_real_events() -> None:
    events = tsv_events("kafka-live-viewer-profiles/micro.1.tsv")
    playing = crit(atomic("event_name"), "in", ["play_event", "pause_event"])
    media = Criteria.parse({"all": [crit(URL, "like", "%/media")], "any": [playing]})
    compiled = compile_criteria(media)
    assert sum(compiled(e) for e in events) == 8
    progress = {"type": "event", "vendor": "com.snowplowanalytics.snowplow.media",
                "name": "ad_quartile_event", "major_version": 1,
                "path": "percentProgress"}  # fmt: skip
    half = compile_criteria(Criteria.parse({"all": [crit(progress, ">=", 50)]}))
    assert sum(half(e) for e in events) == 10
