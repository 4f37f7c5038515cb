from __future__ import annotations

import orjson
import pytest

from signals_stream.errors import BadEvent
from signals_stream.events.dead_letters import BAD_EVENT_SCHEMA, dead_letter_record, original_bytes


def _letter(raw: bytes, max_bytes: int = 900 * 1024) -> tuple[bytes, dict]:
    encoded = dead_letter_record(
        raw,
        BadEvent("FieldNumberMismatch(3)", "expected 131 fields"),
        topic="snowplow-enriched",
        partition=2,
        offset=41,
        key=b"k",
        failed_at_ms=1_700_000_000_000,
        max_bytes=max_bytes,
    )
    return encoded, orjson.loads(encoded)


@pytest.mark.parametrize("raw", [b"a\tb\tc\t\t", b"\xff\xfe not utf-8 \x00", b""])
def test_dead_letter_keeps_the_original_bytes_and_the_reason(raw: bytes) -> None:
    record = _letter(raw)[1]
    assert record["schema"] == BAD_EVENT_SCHEMA
    assert record["reason"] == "FieldNumberMismatch(3)"
    assert record["detail"] == "expected 131 fields"
    assert record["source"] == {
        "topic": "snowplow-enriched",
        "partition": 2,
        "offset": 41,
        "key": "k",
    }
    assert record["failed_at_ms"] == 1_700_000_000_000
    assert original_bytes(record) == raw


def test_reason_kind_drops_the_argument() -> None:
    assert BadEvent("InvalidTimestamp(etl_tstamp)").reason_kind == "InvalidTimestamp"
    assert BadEvent("NotUtf8").reason_kind == "NotUtf8"


@pytest.mark.parametrize(
    ("raw", "encoding"),
    [
        (b"plain text\t" * 50_000, "utf-8"),  # ~550 KB, no escapes
        (b"\x01" * 200_000, "utf-8"),  # JSON writes each as \u0001: six-fold
        (b"\xff" + bytes(range(256)) * 2_000, "base64"),  # not UTF-8: base64, 4/3
        ("é€😀\t".encode() * 30_000, "utf-8"),  # multi-byte characters: cut on a boundary
    ],
)
def test_a_letter_too_large_keeps_a_flagged_prefix_with_the_original_size(
    raw: bytes, encoding: str
) -> None:
    limit = 100_000
    encoded, record = _letter(raw, limit)
    assert limit - 64 <= len(encoded) <= limit  # as much of the original as fits
    assert record["truncated"] is True
    assert record["raw_size"] == len(raw)
    assert record["raw_encoding"] == encoding
    assert record["source"]["offset"] == 41 and record["source"]["partition"] == 2
    kept = original_bytes(record)
    assert 0 < len(kept) < len(raw) and raw.startswith(kept)


def test_a_letter_that_fits_is_not_truncated() -> None:
    raw = b"x\t" * 1000
    encoded, record = _letter(raw, 2 * len(raw) + 1000)  # a tab is written \\t
    assert record["truncated"] is False and original_bytes(record) == raw
    assert record["raw_size"] == len(raw)
