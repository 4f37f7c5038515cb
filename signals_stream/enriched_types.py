"""Typed values of the 128 atomic fields of an enriched event: validation and conversion.

An event keeps its atomic fields as the TSV text (``""`` = null) and converts a value only when
it is read. Validation, which decides whether the event is good, happens once at parse time in
:func:`validate_row`; it is a single regular expression over the typed fields (a slow path runs
only to name the first bad field).

Wire forms accepted (stricter than ``int()`` / ``float()``, which take ``"1_0"``, ``" 1"``,
``"nan"``):

* int: ``-?[0-9]+`` within 32 bits (Enrich's ``JInteger``, the Scala SDK's ``Int``);
* float: plain decimal with an optional exponent (``12``, ``12.0``, ``1E-7``), finite;
* bool: ``1`` or ``0``;
* timestamp: ``YYYY-MM-DD hh:mm:ss`` with a space or ``T``, 0-9 fractional digits, an optional
  ``Z``; always UTC; year 0001-9999 (``-2006-…`` and ``0000-…`` are rejected, as the RDB loader
  does), real calendar dates only;
* ``event_id``: a UUID (as the Scala SDK requires).
"""

from __future__ import annotations

import logging
import math
import re
from datetime import UTC, date, datetime
from operator import itemgetter
from typing import Any

from signals_stream.errors import BadEvent
from signals_stream.fields import FIELD_INDEX, FIELD_NAMES, FIELD_TYPES, FieldType

__all__ = [
    "convert",
    "json_to_text",
    "to_iso",
    "to_json_value",
    "validate_row",
]

logger = logging.getLogger(__name__)

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_EVENT_ID = FIELD_INDEX["event_id"]
_COLLECTOR = FIELD_INDEX["collector_tstamp"]
_DERIVED = FIELD_INDEX["derived_tstamp"]
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DAY_MS = 86_400_000


def _indexes(kind: FieldType) -> tuple[int, ...]:
    return tuple(i for i, t in enumerate(FIELD_TYPES) if t is kind)


_INT_FIELDS = _indexes(FieldType.INT)
_TSTAMP_FIELDS = _indexes(FieldType.TSTAMP)

# Shapes are checked on "masks": the text with every ASCII digit (or hex digit) replaced by
# "0", looked up in a set of allowed masks. Translating and looking up run in C, and one
# translate covers all the int and timestamp fields joined, so the common case costs a few
# C calls instead of a regular expression per field. The int masks stop at 9 digits (always
# 32-bit); longer values, rare, take the per-field slow path.
_DIGITS_TO_0 = str.maketrans("123456789", "0" * 9)
_HEX_TO_0 = str.maketrans("123456789abcdefABCDEF", "0" * 21)
_UUID_MASK = "00000000-0000-0000-0000-000000000000"
_FRACTIONS = ("", *("." + "0" * n for n in range(1, 10)))
_TSTAMP_MASKS = frozenset(
    f"0000-00-00{sep}00:00:00{fraction}{utc}"
    for sep in " T"
    for fraction in _FRACTIONS
    for utc in ("", "Z")
)
_INT_MASKS = frozenset(
    ("", *("0" * n for n in range(1, 10)), *("-" + "0" * n for n in range(1, 10)))
)
_INT_AND_TSTAMP_MASKS = (_INT_MASKS,) * len(_INT_FIELDS) + (_TSTAMP_MASKS | {""},) * len(
    _TSTAMP_FIELDS
)
_BOOL_TEXTS = frozenset(("", "0", "1"))
# Calendar and clock: a valid mask has digits where these look; the tables hold the valid ones.
_HOUR_MS = {f"{h:02d}": h * 3_600_000 for h in range(24)}
_MINUTE_MS = {f"{m:02d}": m * 60_000 for m in range(60)}
_SECOND_MS = {f"{s:02d}": s * 1000 for s in range(60)}
# Milliseconds of text[19:23]: "", "Z", ".d", ".dd", ".ddd" (sub-ms digits cut off), ".dZ"...
_FRACTION_MS = {"": 0, "Z": 0} | {
    f".{ms:03d}"[: 1 + n] + utc: int(f"{ms:03d}"[:n].ljust(3, "0"))
    for n in (1, 2, 3)
    for ms in range(1000)
    for utc in (("", "Z") if n < 3 else ("",))
}
_DAYS: dict[str, int] = {}  # "YYYY-MM-DD" -> epoch ms of its midnight; valid dates only

_FLOAT_FAST = r"-?(?:[0-9]{1,30}(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]{1,2})?"
_FLOATS_RE = re.compile(f"{_FLOAT_FAST}(?:\t{_FLOAT_FAST})*", re.ASCII)
_INT_RE = re.compile(r"-?[0-9]+", re.ASCII)
_FLOAT_RE = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?", re.ASCII)

_ints_and_tstamps = itemgetter(*_INT_FIELDS, *_TSTAMP_FIELDS)
_floats = itemgetter(*_indexes(FieldType.FLOAT))
_bools = itemgetter(*_indexes(FieldType.BOOL))
_other_tstamps = itemgetter(*(i for i in _TSTAMP_FIELDS if i not in (_COLLECTOR, _DERIVED)))
# The slow path checks these, in this order, to name the first bad field.
_CHECKED = (_EVENT_ID, _COLLECTOR) + tuple(
    i for i, t in enumerate(FIELD_TYPES) if t not in (FieldType.STRING, FieldType.JSON)
)


def validate_row(fields: list[str]) -> tuple[int, int]:
    """Check the atomic fields of one event (131 TSV texts) and reject it if any is unusable.

    Every typed field must hold a valid value or be empty; ``event_id`` and
    ``collector_tstamp`` must be present.

    Args:
        fields: the 131 field texts in TSV order.

    Returns:
        ``(collector_tstamp_ms, event_time_ms)``: epoch milliseconds of ``collector_tstamp``
        and of ``derived_tstamp`` (``collector_tstamp`` when empty), sub-ms digits truncated.

    Raises:
        BadEvent: ``MissingEventId``, ``MissingCollectorTstamp``, ``InvalidValue(<field>)`` or
            ``InvalidTimestamp(<field>)`` for the first bad field (event_id and
            collector_tstamp first, then TSV order).
    """
    masks = "\t".join(_ints_and_tstamps(fields)).translate(_DIGITS_TO_0).split("\t")
    if not (
        fields[_EVENT_ID].translate(_HEX_TO_0) == _UUID_MASK
        and fields[_COLLECTOR]
        and all(map(frozenset.__contains__, _INT_AND_TSTAMP_MASKS, masks))
        and _BOOL_TEXTS.issuperset(_bools(fields))
        and (not any(floats := _floats(fields)) or _FLOATS_RE.fullmatch("\t".join(floats)))
    ):
        _check_each(fields)  # raises unless only a fast-path bound was exceeded
    try:
        collector_ms = _tstamp_ms(fields[_COLLECTOR])
        derived = fields[_DERIVED]
        event_ms = _tstamp_ms(derived) if derived else collector_ms
        for text in _other_tstamps(fields):
            if text:
                _tstamp_ms(text)
    except (KeyError, ValueError):
        _check_each(fields)
        raise  # pragma: no cover - _check_each raised
    return collector_ms, event_ms


def _tstamp_ms(text: str) -> int:
    """Epoch ms of a timestamp whose mask is valid; KeyError/ValueError if not a real time."""
    days = _DAYS.get(text[:10])
    if days is None:
        day = date(int(text[:4]), int(text[5:7]), int(text[8:10]))  # ValueError: not a date
        days = (day.toordinal() - _EPOCH_ORDINAL) * _DAY_MS
        if len(_DAYS) >= 10_000:  # bounded against junk
            _DAYS.clear()
        _DAYS[text[:10]] = days
    return (
        days
        + _HOUR_MS[text[11:13]]
        + _MINUTE_MS[text[14:16]]
        + _SECOND_MS[text[17:19]]
        + _FRACTION_MS[text[19:23]]
    )


def _check_each(fields: list[str]) -> None:
    """Raise for the first bad field; return if every field is valid."""
    if not fields[_EVENT_ID]:
        raise BadEvent("MissingEventId", "event_id is empty")
    if not fields[_COLLECTOR]:
        raise BadEvent("MissingCollectorTstamp", "collector_tstamp is empty")
    for i in _CHECKED:
        value = fields[i]
        if value and not _valid(i, value):
            name = FIELD_NAMES[i]
            if FIELD_TYPES[i] is FieldType.TSTAMP:
                raise BadEvent(f"InvalidTimestamp({name})", f"not a UTC timestamp: {_show(value)}")
            kind = "UUID" if i == _EVENT_ID else FIELD_TYPES[i].value
            raise BadEvent(f"InvalidValue({name})", f"not a valid {kind}: {_show(value)}")


def _valid(index: int, value: str) -> bool:
    kind = FIELD_TYPES[index]
    if kind is FieldType.TSTAMP:
        if value.translate(_DIGITS_TO_0) not in _TSTAMP_MASKS:
            return False
        try:
            _tstamp_ms(value)
        except (KeyError, ValueError):
            return False
        return True
    if kind is FieldType.INT:
        # The length bound keeps int() clear of Python's 4300-digit limit (a ValueError).
        return (
            len(value) <= 11
            and _INT_RE.fullmatch(value) is not None
            and _INT_MIN <= int(value) <= _INT_MAX
        )
    if kind is FieldType.FLOAT:
        return _FLOAT_RE.fullmatch(value) is not None and math.isfinite(float(value))
    if kind is FieldType.BOOL:
        return value in ("0", "1")
    return value.translate(_HEX_TO_0) == _UUID_MASK  # event_id, the one checked string


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def _to_datetime(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def to_iso(text: str) -> str:
    """ISO-8601 form of a validated timestamp text, keeping its fractional digits.

    Args:
        text: ``2021-10-15 09:05:29.634397414`` (or already ``…T…Z``).

    Returns:
        ``2021-10-15T09:05:29.634397414Z``, as the Scala SDK's lossy JSON prints it.
    """
    if text[10] == " ":
        text = f"{text[:10]}T{text[11:]}"
    return text if text[-1] == "Z" else f"{text}Z"


def convert(kind: FieldType, text: str) -> Any:
    """The Python value of a validated, non-empty field text.

    Args:
        kind: the field's type.
        text: its TSV text.

    Returns:
        ``str``, ``int``, ``float``, ``bool`` or a timezone-aware UTC ``datetime``.
    """
    if kind is FieldType.INT:
        return int(text)
    if kind is FieldType.FLOAT:
        return float(text)
    if kind is FieldType.BOOL:
        return text == "1"
    if kind is FieldType.TSTAMP:
        return _to_datetime(text)
    return text


def to_json_value(kind: FieldType, text: str) -> Any:
    """The lossy-JSON value of a field text (``None`` when empty), as the Scala SDK writes it.

    Args:
        kind: the field's type.
        text: its TSV text, already validated.

    Returns:
        ``None``, ``str``, ``int``, ``float``, ``bool`` or an ISO-8601 ``…Z`` string.
    """
    if not text:
        return None
    if kind is FieldType.TSTAMP:
        return to_iso(text)
    return convert(kind, text)


def json_to_text(index: int, value: Any) -> str:
    """The TSV text of an atomic value read from the JSON form of an event.

    JSON ``null`` and ``""`` are null. A typed field takes its JSON type (an int field an
    integer, a float field a number, a bool field a boolean) or the TSV text form as a string,
    which :func:`validate_row` checks later.

    Args:
        index: TSV index of the field.
        value: the decoded JSON value.

    Returns:
        The field text.

    Raises:
        BadEvent: ``InvalidValue(<field>)`` when the JSON type does not fit the field.
    """
    if value is None:
        return ""
    kind = FIELD_TYPES[index]
    if type(value) is str:
        # A tab would split the value in validate_row's joined check; TSV cannot carry one.
        if kind is FieldType.STRING or "\t" not in value:
            return value
    elif kind is FieldType.INT and type(value) is int:
        if _INT_MIN <= value <= _INT_MAX:
            return str(value)
    elif kind is FieldType.FLOAT and type(value) in (int, float):
        return repr(value)
    elif kind is FieldType.BOOL and type(value) is bool:
        return "1" if value else "0"
    raise BadEvent(
        f"InvalidValue({FIELD_NAMES[index]})", f"not a valid {kind.value}: {_show(value)}"
    )
