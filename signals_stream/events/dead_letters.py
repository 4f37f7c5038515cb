"""Dead-letter records: what goes to the bad-events topic for an input record we cannot use.

The value is one JSON object, in the spirit of Snowplow's own bad rows: the machine-readable
``reason`` (e.g. ``FieldNumberMismatch(130)``), a human ``detail``, where the record came from,
when it failed, and the original bytes -- as a UTF-8 string when they decode, otherwise base64
(``raw_encoding`` says which), so nothing is lost and the record can be replayed after a fix.
"""

from __future__ import annotations

import base64

import orjson

from signals_stream.errors import BadEvent

__all__ = ["BAD_EVENT_SCHEMA", "dead_letter_record", "original_bytes"]

BAD_EVENT_SCHEMA = "signals-stream/bad-event/1-0-0"


def dead_letter_record(
    raw: bytes,
    error: BadEvent,
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    failed_at_ms: int,
) -> bytes:
    """Serialize one dead letter (pure; the caller supplies the clock)."""
    try:
        payload, encoding = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        payload, encoding = base64.b64encode(raw).decode("ascii"), "base64"
    source_key = None if key is None else key.decode("utf-8", errors="backslashreplace")
    return orjson.dumps(
        {
            "schema": BAD_EVENT_SCHEMA,
            "reason": error.reason,
            "detail": error.detail,
            "source": {"topic": topic, "partition": partition, "offset": offset, "key": source_key},
            "failed_at_ms": failed_at_ms,
            "raw_encoding": encoding,
            "raw": payload,
        }
    )


def original_bytes(record: dict[str, object]) -> bytes:
    """The original input bytes of a decoded dead letter."""
    raw = str(record["raw"])
    return base64.b64decode(raw) if record["raw_encoding"] == "base64" else raw.encode("utf-8")
