"""Dead-letter records: what goes to the bad-events topic for an input record we cannot use.

The value is one JSON object, in the spirit of Snowplow's own bad rows: the machine-readable
``reason`` (e.g. ``FieldNumberMismatch(130)``), a human ``detail``, where the record came from,
when it failed, and the original bytes -- as a UTF-8 string when they decode, otherwise base64
(``raw_encoding`` says which), so nothing is lost and the record can be replayed after a fix.

**Oversize records.** A dead letter must fit in one Kafka message (``max_bytes``, the producer's
and broker's limit, minus headroom). When the whole original does not fit (JSON escaping can
grow text up to 6x, base64 by 4/3), the letter keeps the longest prefix that fits, says
``"truncated": true`` and keeps the original's size in ``raw_size``: the source topic,
partition and offset still lead to the full record while the input topic retains it.
"""

from __future__ import annotations

import base64

import orjson

from signals_stream.errors import BadEvent

__all__ = ["BAD_EVENT_SCHEMA", "DEFAULT_MAX_BYTES", "dead_letter_record", "original_bytes"]

BAD_EVENT_SCHEMA = "signals-stream/bad-event/1-0-0"
# Kafka's default message limit is 1 MiB (broker ``message.max.bytes``, producer
# ``max.request.size``); this leaves room for the record key, headers and batch overhead.
DEFAULT_MAX_BYTES = 900 * 1024
# The source key is kept whole up to this size (a key is not the place for a payload).
_MAX_KEY_CHARS = 16 * 1024


def dead_letter_record(
    raw: bytes,
    error: BadEvent,
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    failed_at_ms: int,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> bytes:
    """Serialize one dead letter of at most ``max_bytes`` (pure; the caller supplies the clock).

    Raises:
        ValueError: ``max_bytes`` cannot hold even an empty letter.
    """
    try:
        text: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    source_key = None if key is None else key.decode("utf-8", errors="backslashreplace")
    if source_key is not None and len(source_key) > _MAX_KEY_CHARS:
        source_key = source_key[:_MAX_KEY_CHARS]
    letter: dict[str, object] = {
        "schema": BAD_EVENT_SCHEMA,
        "reason": error.reason,
        "detail": error.detail[:1024],
        "source": {"topic": topic, "partition": partition, "offset": offset, "key": source_key},
        "failed_at_ms": failed_at_ms,
        "raw_size": len(raw),
        "truncated": False,
        "raw_encoding": "utf-8" if text is not None else "base64",
        "raw": text if text is not None else base64.b64encode(raw).decode("ascii"),
    }
    encoded = orjson.dumps(letter)
    if len(encoded) <= max_bytes:
        return encoded
    letter["truncated"] = True
    letter["raw"] = ""
    budget = max_bytes - len(orjson.dumps(letter)) + 2  # the 2 quotes of the empty string
    if budget < 2:
        raise ValueError(f"a dead letter needs more than {max_bytes} bytes")
    letter["raw"] = _prefix_text(text, budget) if text is not None else _prefix_base64(raw, budget)
    return orjson.dumps(letter)


def _prefix_text(text: str, budget: int) -> str:
    """The longest prefix of ``text`` whose JSON string (quotes and escapes) fits ``budget``."""
    size = min(len(text), budget)
    while True:
        prefix = text[:size]
        encoded = len(orjson.dumps(prefix))
        if encoded <= budget:
            break
        # Shrink in proportion to the overshoot (escapes make the ratio uneven): few rounds.
        size = max(0, min(size - 1, size * budget // encoded))
    # Grow back what the proportional cut gave away, a character at a time while it fits.
    step = max(1, (budget - encoded) // 6)
    while size < len(text) and step >= 1:
        grown = len(orjson.dumps(text[: size + step]))
        if grown <= budget:
            size += step
        else:
            step //= 2
    return text[:size]


def _prefix_base64(raw: bytes, budget: int) -> str:
    usable = (budget - 2) // 4 * 3  # whole base64 quanta, without the quotes
    return base64.b64encode(raw[:usable]).decode("ascii")


def original_bytes(record: dict[str, object]) -> bytes:
    """The original input bytes of a decoded dead letter (a prefix when ``truncated``)."""
    raw = str(record["raw"])
    return base64.b64decode(raw) if record["raw_encoding"] == "base64" else raw.encode("utf-8")
