"""ISO 8601 durations (``period``, ``ttl``, ``refresh_rate``).

The SDK serializes ``timedelta`` with pydantic, which writes 365 days as ``P1Y`` and 400 days as
``P1Y35D``; other clients may send weeks (``P1W``). Calendar units are fixed lengths, as in
pydantic: a year is 365 days and a month 30 days. Values are stored as ``timedelta`` and written
back in pydantic's canonical form, so every duration the SDK sends echoes byte for byte.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator

__all__ = ["Duration", "duration_ms", "parse_duration"]

_NUM = r"(\d+(?:[.,]\d+)?)"
_ISO = re.compile(
    rf"^P(?:{_NUM}Y)?(?:{_NUM}M)?(?:{_NUM}W)?(?:{_NUM}D)?"
    rf"(?:T(?=\d)(?:{_NUM}H)?(?:{_NUM}M)?(?:{_NUM}S)?)?$"
)
# Seconds per designator, in the order of the regex groups.
_UNIT_SECONDS = (365 * 86400, 30 * 86400, 7 * 86400, 86400, 3600, 60, 1)


def parse_duration(value: object) -> timedelta:
    """Parse an ISO 8601 duration (``PT15M``, ``P30D``, ``P1Y``, ``P2W``, ``P1DT12H``).

    A ``timedelta`` passes through; a bare number is a number of seconds (pydantic's rule).

    Args:
        value: the wire value.

    Returns:
        The duration, always strictly positive.

    Raises:
        ValueError: not a duration, or zero/negative (pydantic reports it against the field).
    """
    if isinstance(value, timedelta):
        result = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        result = _seconds(value, value)
    elif isinstance(value, str):
        match = _ISO.match(value.strip().upper())
        if match is None or not any(match.groups()):
            raise ValueError(f"{value!r} is not an ISO 8601 duration such as PT15M, P30D or P1Y")
        seconds = sum(
            float(part.replace(",", ".")) * unit
            for part, unit in zip(match.groups(), _UNIT_SECONDS, strict=True)
            if part is not None
        )
        result = _seconds(seconds, value)
    else:
        raise ValueError(f"expected an ISO 8601 duration string, got {type(value).__name__}")
    if result <= timedelta(0):
        raise ValueError(f"must be a positive duration, got {value!r}")
    return result


def _seconds(seconds: float, value: object) -> timedelta:
    # timedelta tops out near 2.7 million years; beyond (or NaN) is a 422, not an OverflowError.
    try:
        return timedelta(seconds=seconds)
    except (OverflowError, ValueError):
        raise ValueError(f"{value!r} is not a representable duration") from None


def duration_ms(value: timedelta) -> int:
    """Whole milliseconds of a duration (the engine's time unit)."""
    return value // timedelta(milliseconds=1)


def _validate(value: Any) -> timedelta:
    return parse_duration(value)


# Serialized by pydantic's own ISO 8601 writer, i.e. exactly as the SDK wrote it.
Duration = Annotated[timedelta, BeforeValidator(_validate)]
