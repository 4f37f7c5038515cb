"""The JSONPath subset and ISO 8601 durations."""

from __future__ import annotations

from datetime import timedelta

import pytest

from signals_stream.definitions import compile_path, extract, parse_duration
from signals_stream.definitions.durations import duration_ms
from signals_stream.definitions.paths import format_path

PATHS = [
    ("price", ("price",)),
    ("$.price", ("price",)),
    ("$.user.profile.name", ("user", "profile", "name")),
    ("$.events[0].items[1].value", ("events", 0, "items", 1, "value")),
    ("items[0].sku", ("items", 0, "sku")),
    ("[0].id", (0, "id")),
    ("$[2]", (2,)),
    ("matrix[1][0]", ("matrix", 1, 0)),
    ("items[-1]", ("items", -1)),
    ("a-b.c_d.$e", ("a-b", "c_d", "$e")),
    ("__utma", ("__utma",)),
]


@pytest.mark.parametrize(("path", "steps"), PATHS)
def test_compile_path(path: str, steps: tuple) -> None:
    assert compile_path(path) == steps
    assert compile_path(format_path(steps)) == steps


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("", "non-empty"),
        (" a", "surrounding spaces"),
        ("$", "whole document"),
        ("$['a']", "bracket-quoted"),
        ('a["b"]', "bracket-quoted"),
        ("$a", "must be followed by"),
        ("a..b", "unsupported syntax"),
        ("$..a", "unsupported syntax"),
        ("a.", "unsupported syntax"),
        ("a[*]", "unsupported syntax"),
        ("a.*", "wildcards"),
        ("a[0", "unsupported syntax"),
        ("a[?(@.x)]", "unsupported syntax"),
    ],
)
def test_compile_path_rejects(path: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        compile_path(path)


DOC = {
    "user": {"profile": {"name": "Ada", "zero": 0, "no": False}},
    "events": [{"items": [{"value": 1}, {"value": 2}]}],
    "empty": None,
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$.user.profile.name", "Ada"),
        ("user.profile.zero", 0),
        ("user.profile.no", False),
        ("$.events[0].items[1].value", 2),
        ("events[0].items[-1].value", 2),
        ("events[0].items[5].value", None),  # index out of range
        ("user.missing.name", None),  # missing key
        ("user[0]", None),  # index into an object
        ("events.items", None),  # key into a list
        ("user.profile.name.first", None),  # key into a string
        ("empty.x", None),  # through a null
        ("events[0]", {"items": [{"value": 1}, {"value": 2}]}),
    ],
)
def test_extract(path: str, expected: object) -> None:
    assert extract(DOC, compile_path(path)) == expected


def test_extract_from_nothing() -> None:
    assert extract(None, ("a",)) is None
    assert extract([1, 2], (1,)) == 2


DURATIONS = [
    ("PT15M", timedelta(minutes=15), "PT15M"),
    ("P30D", timedelta(days=30), "P30D"),
    ("P1Y", timedelta(days=365), "P1Y"),
    ("P1Y35D", timedelta(days=400), "P1Y35D"),
    ("P2W", timedelta(days=14), "P14D"),
    ("P1M", timedelta(days=30), "P30D"),
    ("P1DT12H", timedelta(days=1, hours=12), "P1DT12H"),
    ("PT0.5S", timedelta(milliseconds=500), "PT0.5S"),
    ("PT1,5H", timedelta(minutes=90), "PT1H30M"),
    ("pt900s", timedelta(minutes=15), "PT15M"),
    (3600, timedelta(hours=1), "PT1H"),
    (timedelta(days=2), timedelta(days=2), "P2D"),
]


@pytest.mark.parametrize(("raw", "expected", "canonical"), DURATIONS)
def test_parse_duration(raw: object, expected: timedelta, canonical: str) -> None:
    from signals_stream.definitions import Attribute

    assert parse_duration(raw) == expected
    attribute = Attribute(name="a", type="int32", aggregation="counter", period=raw)
    assert attribute.period == expected
    assert attribute.to_wire()["period"] == canonical


@pytest.mark.parametrize("raw", ["", "P", "PT", "1H", "P1H", "PT1D", "-P1D", "P0D", "PT0S", 0, -5,
                                 True, None, "P1DT", "P1.5.5D"])  # fmt: skip
def test_parse_duration_rejects(raw: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(raw)


def test_duration_ms() -> None:
    assert duration_ms(timedelta(minutes=15)) == 900_000
    assert duration_ms(parse_duration("P1Y")) == 365 * 86_400_000
