from __future__ import annotations

import gzip
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from signals_stream.devtools.generator import GeneratorConfig, generate_lines
from signals_stream.devtools.replay import (
    TIMESTAMP_FIELDS,
    event_time_ms,
    is_json_record,
    iter_records,
    newest_event_time_ms,
    shift_record,
    shift_timestamp,
)
from signals_stream.events.fields import FIELD_COUNT, FIELD_INDEX
from signals_stream.events.parse import parse_record
from tests.datafiles import DATA_DIR

MICRO = DATA_DIR / "kafka-live-viewer-profiles/micro.1.tsv"
WIDEROW_TSV = DATA_DIR / "snowplow-rdb-loader/widerow-json.input-events.tsv"
WIDEROW_JSON = DATA_DIR / "snowplow-rdb-loader/widerow-json.output-widerows.jsonl"
GO_SDK_LINE = DATA_DIR / "snowplow-golang-analytics-sdk/readme-quickstart-add_to_cart.tsv"
INVALID_TIMESTAMPS = DATA_DIR / "snowplow-rdb-loader/invalidtimestamp.input-events.tsv"
TARGET_MS = 1_750_000_000_123

_TEXT = re.compile(r"(\d{4}-\d\d-\d\d)([ T])(\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|\+00:00)?")


def _ns(text: str) -> int:
    """Epoch nanoseconds of a timestamp text, computed independently of the module under test."""
    match = _TEXT.fullmatch(text)
    assert match, text
    base = datetime.fromisoformat(f"{match[1]}T{match[3]}+00:00")
    return int(base.timestamp()) * 10**9 + int((match[4] or "").ljust(9, "0"))


def _shape(text: str) -> tuple[str, int, str]:
    """(separator, fractional digits, suffix) of a timestamp text."""
    match = _TEXT.fullmatch(text)
    assert match, text
    return match[2], len(match[4] or ""), match[5] or ""


def _lines_of(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().split(b"\n") if line]


@pytest.mark.parametrize("path", [MICRO, WIDEROW_TSV, WIDEROW_JSON, GO_SDK_LINE])
def test_real_files_round_trip_line_for_line(path: Path) -> None:
    records = list(iter_records([path]))
    assert records == _lines_of(path)
    if path == MICRO:
        assert len(records) == 73
        assert all(r.endswith(b"\t\t") and len(r.split(b"\t")) == FIELD_COUNT for r in records)


def test_only_line_terminators_are_removed(tmp_path: Path) -> None:
    path = tmp_path / "mixed.tsv"
    path.write_bytes(b"\xef\xbb\xbfa\t\t\r\n\r\n\n  b\t \n" + b'{"x": 1}  \r\n' + b"\t\t")
    assert list(iter_records([path])) == [b"a\t\t", b"  b\t ", b'{"x": 1}  ', b"\t\t"]
    assert [is_json_record(r) for r in iter_records([path])] == [False, False, True, False]


def test_files_are_read_in_order_and_gzip_is_decompressed(tmp_path: Path) -> None:
    plain, packed = tmp_path / "a.tsv", tmp_path / "b.tsv.gz"
    plain.write_bytes(b"one\t\ntwo\t\t\n")
    with gzip.open(packed, "wb") as stream:
        stream.write(b"three\t\r\n")
    assert list(iter_records([packed, plain])) == [b"three\t", b"one\t", b"two\t\t"]


def test_dash_reads_standard_input_as_bytes() -> None:
    script = (
        "import sys; from pathlib import Path\n"
        "from signals_stream.devtools.replay import iter_records\n"
        "for r in iter_records([Path('-')]): sys.stdout.buffer.write(repr(r).encode() + b'\\n')"
    )
    stdin = b"caf\xc3\xa9\t\t\r\n\n\xff\tnot utf-8\n"
    result = subprocess.run(
        [sys.executable, "-c", script], input=stdin, capture_output=True, check=True, timeout=60
    )
    assert result.stdout.decode().splitlines() == [
        repr(b"caf\xc3\xa9\t\t"),
        repr(b"\xff\tnot utf-8"),
    ]


@pytest.mark.parametrize("path", [MICRO, WIDEROW_TSV, GO_SDK_LINE])
def test_shift_to_now_moves_every_tsv_timestamp_by_one_constant(path: Path) -> None:
    records = list(iter_records([path]))
    newest = newest_event_time_ms(records)
    assert newest is not None
    delta = TARGET_MS - newest
    shifted = [shift_record(r, delta) for r in records]
    assert newest_event_time_ms(shifted) == TARGET_MS
    moved = 0
    for before, after in zip(records, shifted, strict=True):
        old, new = before.split(b"\t"), after.split(b"\t")
        if len(old) != FIELD_COUNT:  # the deliberately malformed lines pass through
            assert after == before
            continue
        for name, index in FIELD_INDEX.items():
            if name not in TIMESTAMP_FIELDS or not old[index]:
                assert new[index] == old[index], name
                continue
            old_text, new_text = old[index].decode(), new[index].decode()
            assert _shape(new_text) == _shape(old_text)
            assert _ns(new_text) - _ns(old_text) == delta * 10**6  # gaps kept to the nanosecond
            moved += 1
        assert after.endswith(b"\t") == before.endswith(b"\t")
        event = parse_record(after)
        assert event.event_time_ms == parse_record(before).event_time_ms + delta
    assert moved >= len(records)


def test_shift_to_now_edits_json_records_in_place() -> None:
    records = list(iter_records([WIDEROW_JSON]))
    newest = newest_event_time_ms(records)
    assert newest == newest_event_time_ms(iter_records([WIDEROW_TSV]))  # same events
    delta = TARGET_MS - newest  # type: ignore[operator]
    for before, after in zip(records, (shift_record(r, delta) for r in records), strict=True):
        old, new = orjson.loads(before), orjson.loads(after)
        assert len(after) == len(before)  # nothing but the timestamp digits changed
        for key, value in old.items():
            if key in TIMESTAMP_FIELDS and value is not None:
                assert _shape(new[key]) == _shape(value) == ("T", _shape(value)[1], "Z")
                assert _ns(new[key]) - _ns(value) == delta * 10**6
            else:
                assert new[key] == value, key
    assert newest_event_time_ms(shift_record(r, delta) for r in records) == TARGET_MS


def test_json_record_whose_text_is_ambiguous_is_reserialized() -> None:
    # The same key and value inside a nested object: the in-place edit cannot tell them apart.
    record = orjson.dumps(
        {
            "collector_tstamp": "2024-01-01T00:00:00.000Z",
            "x": {"collector_tstamp": "2024-01-01T00:00:00.000Z"},
        }
    )
    doc = orjson.loads(shift_record(record, 1_000))
    assert doc["collector_tstamp"] == "2024-01-01T00:00:01.000Z"
    assert doc["x"]["collector_tstamp"] == "2024-01-01T00:00:00.000Z"


def test_records_that_cannot_be_shifted_pass_through_unchanged() -> None:
    bad_years = list(iter_records([INVALID_TIMESTAMPS]))
    shifted = [shift_record(r, 3_600_000) for r in bad_years]
    assert [a == b for a, b in zip(bad_years, shifted, strict=True)] == [True, False, True]
    for record in (
        b"not an event",
        b"[1, 2, 3]",
        b"{not json",
        b'{"collector_tstamp": "yesterday"}',
        b'{"collector_tstamp": 1700000000000}',
        b'{"derived_tstamp": "9999-12-31T23:59:59.999Z"}',  # would leave year 9999
    ):
        assert shift_record(record, 1_000) == record
    line = next(generate_lines(GeneratorConfig(users=1, start_ms=TARGET_MS), 1))
    assert shift_record(line, 0) is line


@pytest.mark.parametrize(
    ("text", "delta_ms", "expected"),
    [
        ("2021-10-15 09:05:29.634397414", 1_500, "2021-10-15 09:05:31.134397414"),
        ("2021-10-15 09:05:29.634397414", -29_635, "2021-10-15 09:04:59.999397414"),
        ("2024-11-16 13:33:22.625", 37 * 86_400_000, "2024-12-23 13:33:22.625"),
        ("2023-12-31 23:59:59.999", 1, "2024-01-01 00:00:00.000"),
        ("2024-02-28T23:00:00.123456Z", 3_600_000, "2024-02-29T00:00:00.123456Z"),
        ("2024-01-01T00:00:00.120+00:00", -121, "2023-12-31T23:59:59.999+00:00"),
        # Fewer than 3 digits: the shift is rounded down to what the text can express.
        ("2013-11-26 00:02:05", 1_999, "2013-11-26 00:02:06"),
        ("2013-11-26 00:02:05", -1, "2013-11-26 00:02:04"),
        ("2013-11-26 00:02:05.5", 1_550, "2013-11-26 00:02:07.0"),
        ("2013-11-26 00:02:05.50", 19, "2013-11-26 00:02:05.51"),
        ("-2006-10-15 09:06:35.493", 1, None),
        ("0000-01-01 00:00:00.000", 1, None),
        ("2021-02-30 00:00:00.000", 1, None),
        ("2021-10-15 09:05:29.634+01:00", 1, None),
        ("", 1, None),
    ],
)
def test_shift_timestamp(text: str, delta_ms: int, expected: str | None) -> None:
    assert shift_timestamp(text, delta_ms) == expected


def test_event_time_is_derived_else_collector_tstamp() -> None:
    line = next(generate_lines(GeneratorConfig(users=1, start_ms=TARGET_MS), 1))
    fields = line.split(b"\t")
    derived = parse_record(line).event_time_ms
    assert event_time_ms(line) == derived
    fields[FIELD_INDEX["derived_tstamp"]] = b""
    without_derived = b"\t".join(fields)
    assert event_time_ms(without_derived) == parse_record(without_derived).collector_tstamp_ms
    assert (
        event_time_ms(b'{"derived_tstamp": null, "collector_tstamp": "1970-01-01T00:00:01.5Z"}')
        == 1_500
    )
    assert event_time_ms(b"a\tb") is None
    assert newest_event_time_ms([b"garbage", b""]) is None


def test_generated_events_survive_a_shift() -> None:
    lines = list(generate_lines(GeneratorConfig(users=20, seed=2, start_ms=TARGET_MS), 400))
    newest = newest_event_time_ms(lines)
    assert newest is not None
    delta = 1_000_000_000_000 - newest
    for line in lines:
        shifted = shift_record(line, delta)
        assert parse_record(shifted).event_time_ms == parse_record(line).event_time_ms + delta
