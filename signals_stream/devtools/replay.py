"""Reading recorded events for ``signals-stream replay``, and moving them in time.

Input files hold one event per line: the 131-field enriched TSV, or a JSON object (the analytics
SDKs' form), told apart per line by the first non-blank byte (``{`` means JSON). Lines keep every
byte but their terminator: a TSV line ends in empty fields (``…\\t\\t``) that must survive.

``--shift-to-now`` moves every timestamp of every event by one constant ``delta_ms`` so that the
newest event time (``derived_tstamp``, else ``collector_tstamp``) lands at the target, keeping
all gaps. A timestamp keeps its format: separator (space or ``T``), suffix (none, ``Z`` or
``+00:00``) and number of fractional digits. With 3 or more digits the shift is exact (digits
past the milliseconds are kept as they are); with fewer, ``delta_ms`` is rounded down to the
unit they can express (whole seconds for none), which is still one constant for those values.
A record that cannot be shifted (wrong field count, a timestamp that does not parse or would
leave years 1-9999, JSON that is not an object) is returned unchanged; the worker dead-letters
it if it is bad.
"""

from __future__ import annotations

import gzip
import logging
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

import orjson

from signals_stream.events.fields import FIELD_COUNT, FIELD_INDEX

__all__ = [
    "TIMESTAMP_FIELDS",
    "event_time_ms",
    "is_json_record",
    "iter_records",
    "newest_event_time_ms",
    "shift_record",
    "shift_timestamp",
]

logger = logging.getLogger(__name__)

TIMESTAMP_FIELDS: tuple[str, ...] = (
    "etl_tstamp",
    "collector_tstamp",
    "dvce_created_tstamp",
    "dvce_sent_tstamp",
    "refr_dvce_tstamp",
    "derived_tstamp",
    "true_tstamp",
)
_TSV_INDEXES = tuple(FIELD_INDEX[name] for name in TIMESTAMP_FIELDS)
# Fields [_MIDDLE_START, _MIDDLE_END) hold no timestamp; shift_record() keeps them as one blob.
_MIDDLE_START = max(i for i in _TSV_INDEXES if i < FIELD_COUNT // 2) + 1
_MIDDLE_END = min(i for i in _TSV_INDEXES if i >= FIELD_COUNT // 2)
_TSV_POSITIONS = tuple(
    i if i < _MIDDLE_START else i - (_MIDDLE_END - _MIDDLE_START) + 1 for i in _TSV_INDEXES
)
_DERIVED = FIELD_INDEX["derived_tstamp"]
_COLLECTOR = FIELD_INDEX["collector_tstamp"]
# The Python and Go SDKs name field 121 refr_device_tstamp in their JSON.
_JSON_KEYS = (*TIMESTAMP_FIELDS, "refr_device_tstamp")
_JSON_KEY_PATTERNS = {key: re.compile(rb'"' + key.encode() + rb'"\s*:\s*"') for key in _JSON_KEYS}

_JSON_START = re.compile(rb"[ \t\r\n]*\{")
# A timestamp is a 19-character head "YYYY-MM-DD hh:mm:ss" (or with "T") and a tail with the
# optional fraction and UTC suffix. Heads repeat a lot within a file, so they are parsed and
# formatted through small caches.
_HEAD = re.compile(r"(\d{4})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)", re.ASCII)
_TAIL = re.compile(r"(?:\.(\d{1,9}))?(Z|\+00:00)?", re.ASCII)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BOM = b"\xef\xbb\xbf"


def iter_records(paths: Sequence[Path]) -> Iterator[bytes]:
    """Yield the records of the given files, one per non-empty line, in order.

    Args:
        paths: files to read; ``-`` is standard input (binary), a ``.gz`` suffix is decompressed.

    Returns:
        An iterator of records without their line terminator (``\\n`` or ``\\r\\n``); nothing
        else is removed, except a UTF-8 byte-order mark at the start of a file.

    Raises:
        OSError: when a file cannot be opened or read.
    """
    for path in paths:
        if str(path) == "-":
            yield from _lines(sys.stdin.buffer)
            continue
        logger.debug("reading records from %s", path)
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as stream:
            yield from _lines(stream)  # type: ignore[arg-type]


def _lines(stream: BinaryIO) -> Iterator[bytes]:
    first = True
    for line in stream:
        if first:
            first = False
            if line.startswith(_BOM):
                line = line[len(_BOM) :]
        if line.endswith(b"\n"):
            line = line[:-2] if line.endswith(b"\r\n") else line[:-1]
        if line:
            yield line


def is_json_record(record: bytes) -> bool:
    """Whether a record is in JSON form (its first non-blank byte is ``{``) rather than TSV."""
    return _JSON_START.match(record) is not None


def event_time_ms(record: bytes) -> int | None:
    """The event time of a record: ``derived_tstamp``, else ``collector_tstamp``.

    Args:
        record: one TSV or JSON record.

    Returns:
        Epoch milliseconds (rounded down), or ``None`` when the record has no readable time.
    """
    if is_json_record(record):
        doc = _load_object(record)
        if doc is None:
            return None
        value = doc.get("derived_tstamp") or doc.get("collector_tstamp")
        return _parse_ms(value) if isinstance(value, str) else None
    fields = record.split(b"\t")
    if len(fields) != FIELD_COUNT:
        return None
    raw = fields[_DERIVED] or fields[_COLLECTOR]
    try:
        return _parse_ms(raw.decode("ascii"))
    except UnicodeDecodeError:
        return None


def newest_event_time_ms(records: Iterable[bytes]) -> int | None:
    """The latest event time among ``records``, skipping records without a readable one.

    Args:
        records: TSV or JSON records, e.g. from :func:`iter_records`.

    Returns:
        Epoch milliseconds, or ``None`` when no record has an event time.
    """
    newest: int | None = None
    for record in records:
        t = event_time_ms(record)
        if t is not None and (newest is None or t > newest):
            newest = t
    return newest


def shift_record(record: bytes, delta_ms: int) -> bytes:
    """Move every timestamp of a record by ``delta_ms``, keeping each one's format.

    Args:
        record: one TSV or JSON record.
        delta_ms: the shift, e.g. ``now_ms - newest_event_time_ms(...)``.

    Returns:
        The shifted record; the record itself if ``delta_ms`` is 0 or it cannot be shifted.
        Only timestamp texts change: TSV fields are replaced in place, and so are the JSON
        values when they can be found unambiguously in the text (else the object is
        re-serialized).
    """
    if delta_ms == 0:
        return record
    if is_json_record(record):
        return _shift_json(record, delta_ms)
    if record.count(b"\t") != FIELD_COUNT - 1:
        return record
    # Split off only the fields around the timestamps: the early ones, one blob for the middle,
    # and the late ones (splitting all 131 fields would cost a third of the time).
    early = record.split(b"\t", _MIDDLE_START)
    late = early.pop().rsplit(b"\t", FIELD_COUNT - _MIDDLE_END)
    fields = early + late  # field i is at i before the middle, at i - span + 1 after it
    for position in _TSV_POSITIONS:
        raw = fields[position]
        if not raw:
            continue
        try:
            shifted = shift_timestamp(raw.decode("ascii"), delta_ms)
        except UnicodeDecodeError:
            return record
        if shifted is None:
            return record
        fields[position] = shifted.encode("ascii")
    return b"\t".join(fields)


def shift_timestamp(text: str, delta_ms: int) -> str | None:
    """Shift one timestamp text, keeping its separator, suffix and fractional digits.

    Args:
        text: e.g. ``2021-10-15 09:05:29.634397414`` or ``2021-10-15T09:05:29.634Z``.
        delta_ms: the shift; rounded down to what the fractional digits can express.

    Returns:
        The shifted text, or ``None`` if ``text`` is not a timestamp or the result would leave
        years 1-9999.
    """
    parsed = _parse(text)
    if parsed is None:
        return None
    seconds, fraction, separator, suffix = parsed
    digits = len(fraction)
    try:
        if digits >= 3:
            total_ms = seconds * 1000 + int(fraction[:3]) + delta_ms
            seconds, millis = divmod(total_ms, 1000)
            fraction = f"{millis:03d}{fraction[3:]}"
        else:
            unit_ms = 10 ** (3 - digits)
            total_ms = seconds * 1000 + int(fraction or "0") * unit_ms
            total_ms += delta_ms // unit_ms * unit_ms
            seconds, rest_ms = divmod(total_ms, 1000)
            fraction = f"{rest_ms // unit_ms:0{digits}d}" if digits else ""
        head = _format_head(seconds, separator)
    except OverflowError:
        return None
    return f"{head}.{fraction}{suffix}" if digits else head + suffix


def _parse(text: str) -> tuple[int, str, str, str] | None:
    """Split a timestamp into (epoch seconds, fraction digits, separator, suffix)."""
    tail = _TAIL.fullmatch(text, 19)
    if tail is None:
        return None
    seconds = _head_seconds(text[:19])
    if seconds is None:
        return None
    fraction, suffix = tail.groups()
    return seconds, fraction or "", text[10], suffix or ""


@lru_cache(maxsize=4096)
def _head_seconds(head: str) -> int | None:
    match = _HEAD.fullmatch(head)
    if match is None:
        return None
    try:
        year, month, day, hour, minute, second = map(int, match.groups())
        moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:  # year 0, February 30, 24:00, leap seconds, ...
        return None
    return (moment - _EPOCH) // timedelta(seconds=1)


@lru_cache(maxsize=4096)
def _format_head(seconds: int, separator: str) -> str:
    """Raises OverflowError outside years 1-9999."""
    moment = _EPOCH + timedelta(seconds=seconds)
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}{separator}"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )


def _parse_ms(text: str) -> int | None:
    parsed = _parse(text)
    if parsed is None:
        return None
    seconds, fraction, _, _ = parsed
    return seconds * 1000 + int(fraction[:3].ljust(3, "0"))


def _load_object(record: bytes) -> dict[str, object] | None:
    try:
        doc = orjson.loads(record)
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


def _shift_json(record: bytes, delta_ms: int) -> bytes:
    doc = _load_object(record)
    if doc is None:
        return record
    changes: list[tuple[str, str, str]] = []
    for key in _JSON_KEYS:
        value = doc.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            return record
        shifted = shift_timestamp(value, delta_ms)
        if shifted is None:
            return record
        changes.append((key, value, shifted))
    if not changes:
        return record
    # Edit the text in place to keep everything else byte for byte. A value whose text is not
    # found exactly once after its key (escapes, or the same pair in a nested object) falls back
    # to re-serializing the object.
    text = record
    for key, old, new in changes:
        expected = old.encode() + b'"'
        starts = [
            match.end()
            for match in _JSON_KEY_PATTERNS[key].finditer(text)
            if text.startswith(expected, match.end())
        ]
        if len(starts) != 1:
            for name, _, shifted in changes:
                doc[name] = shifted
            return orjson.dumps(doc)
        start = starts[0]
        text = text[:start] + new.encode() + text[start + len(old) :]
    return text
