"""Where an SSE stream stands in the interventions topic: the ``id:`` of its frames.

A stream's targets live in a few partitions of the interventions topic (the record key is the
target id). Its position is, for each of those partitions, the offset of the next record it has
not been shown: every record of its targets below that offset was sent to it. Written as
``<partition>:<offset>`` pairs, comma-separated, sorted by partition (``0:17,3:204``). A browser's
``EventSource`` sends the last one back as ``Last-Event-ID`` when it reconnects, and the stream
resumes from there (``api/interventions.py``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["MAX_POSITION_CHARS", "format_position", "parse_position"]

MAX_POSITION_CHARS = 4096
_PAIR = re.compile(r"^(\d{1,6}):(\d{1,19})$")


def format_position(position: Mapping[int, int]) -> str:
    return ",".join(f"{partition}:{offset}" for partition, offset in sorted(position.items()))


def parse_position(text: str) -> dict[int, int] | None:
    """The position an ``id`` of ours names, or None when ``text`` is not one (a client may send
    any ``Last-Event-ID``; one we did not write is ignored, not an error: an ``EventSource``
    refused with a 4xx stops reconnecting for good)."""
    if not text or len(text) > MAX_POSITION_CHARS:
        return None
    position: dict[int, int] = {}
    for pair in text.split(","):
        match = _PAIR.match(pair.strip())
        if match is None:
            return None
        partition, offset = int(match[1]), int(match[2])
        if partition in position:
            return None
        position[partition] = offset
    return position
