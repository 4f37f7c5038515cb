from __future__ import annotations

import orjson
import pytest

from signals_stream.errors import BadEvent
from signals_stream.events.dead_letters import BAD_EVENT_SCHEMA, dead_letter_record, original_bytes


@pytest.mark.parametrize("raw", [b"a\tb\tc\t\t", b"\xff\xfe not utf-8 \x00", b""])
def test_dead_letter_keeps_the_original_bytes_and_the_reason(raw: bytes) -> None:
    record = orjson.loads(
        dead_letter_record(
            raw,
            BadEvent("FieldNumberMismatch(3)", "expected 131 fields"),
            topic="snowplow-enriched",
            partition=2,
            offset=41,
            key=b"k",
            failed_at_ms=1_700_000_000_000,
        )
    )
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
