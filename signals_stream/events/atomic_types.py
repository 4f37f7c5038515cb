"""Typed values of the 128 atomic fields of an enriched event: validation and conversion.

An event keeps its atomic fields as the TSV text (``""`` = null) and converts a value only when
it is read. Validation, which decides whether the event is good, happens once at parse time in
:func:`validate_row`: per type, one regular expression over the non-empty values joined by
tabs, then ``datetime.fromisoformat`` per timestamp for the calendar; a per-field slow path
runs only to name the first bad field.

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
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from signals_stream.errors import BadEvent
from signals_stream.events.fields import FIELD_INDEX, FIELD_NAMES, FIELD_TYPES, FieldType

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
_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC = _EPOCH.replace(tzinfo=UTC)
_fromisoformat = datetime.fromisoformat

# The regular expressions check shapes; fromisoformat then checks the calendar and the clock
# (year >= 1, month, day, Feb 29, hour, minute, second), which costs less than encoding the
# ranges in the patterns. The fast int and float shapes are bounded (9 digits, 2-digit
# exponents) so that a match is always in range; longer values, rare, take the slow path.
_TS = r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d{1,9})?Z?"
_INT_FAST = r"-?\d{1,9}"
_FLOAT_FAST = r"-?(?:\d{1,30}(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d{1,2})?"


def _tab_separated(shape: str) -> re.Pattern[str]:
    return re.compile(f"{shape}(?:\t{shape})*", re.ASCII)


_TS_RE = re.compile(_TS, re.ASCII)
_INT_RE = re.compile(r"-?\d+", re.ASCII)
_FLOAT_RE = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?", re.ASCII)
_UUID_RE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", re.ASCII
)
_INTS_RE = _tab_separated(_INT_FAST)
_FLOATS_RE = _tab_separated(_FLOAT_FAST)
_TSTAMPS_RE = _tab_separated(_TS)
_BOOL_TEXTS = frozenset(("", "0", "1"))


def _indexes(kind: FieldType) -> tuple[int, ...]:
    return tuple(i for i, t in enumerate(FIELD_TYPES) if t is kind)


_ints = itemgetter(*_indexes(FieldType.INT))
_floats = itemgetter(*_indexes(FieldType.FLOAT))
_bools = itemgetter(*_indexes(FieldType.BOOL))
_tstamps = itemgetter(*_indexes(FieldType.TSTAMP))
_other_tstamps = itemgetter(
    *(i for i in _indexes(FieldType.TSTAMP) if i not in (_COLLECTOR, _DERIVED))
)
# The slow path checks these, in this order, to name the first bad field.
_CHECKED = (_EVENT_ID, _COLLECTOR) + tuple(
    i for i, t in enumerate(FIELD_TYPES) if t not in (FieldType.STRING, FieldType.JSON)
)


def validate_row(fields: list[str]) -> tuple[int, int]:
    """Check the atomic fields of one event (131 TSV texts) and reject it if any is unusable.

    Every typed field must hold a valid value or be empty; ``event_id`` and
    ``collector_tstamp`` must be present. The common case costs one regular expression per
    type over the non-empty values joined by tabs (no value can hold a tab), and one
    ``fromisoformat`` per timestamp.

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
    if not (
        _UUID_RE.fullmatch(fields[_EVENT_ID])
        and fields[_COLLECTOR]
        and _TSTAMPS_RE.fullmatch("\t".join(filter(None, _tstamps(fields))))
        and (not any(ints := _ints(fields)) or _INTS_RE.fullmatch("\t".join(filter(None, ints))))
        and (
            not any(floats := _floats(fields))
            or _FLOATS_RE.fullmatch("\t".join(filter(None, floats)))
        )
        and _BOOL_TEXTS.issuperset(_bools(fields))
    ):
        _check_each(fields)  # raises unless only a fast-path bound was exceeded
    try:
        collector = _fromisoformat(fields[_COLLECTOR])
        derived = fields[_DERIVED]
        event_time = _fromisoformat(derived) if derived else collector
        for text in _other_tstamps(fields):
            if text:
                _fromisoformat(text)
    except ValueError:
        _check_each(fields)
        raise  # pragma: no cover - _check_each raised
    collector_ms = _epoch_ms(collector)
    return collector_ms, collector_ms if event_time is collector else _epoch_ms(event_time)


def _epoch_ms(moment: datetime) -> int:
    # A trailing Z makes fromisoformat return an aware datetime; the epoch must match.
    delta = moment - (_EPOCH if moment.tzinfo is None else _EPOCH_UTC)
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


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
        if _TS_RE.fullmatch(value) is None:
            return False
        try:
            _fromisoformat(value)
        except ValueError:
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
    return _UUID_RE.fullmatch(value) is not None  # event_id, the one checked string


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def _to_datetime(text: str) -> datetime:
    moment = _fromisoformat(text)
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
