"""``LIKE`` with a fast path: patterns made of literals and ``%`` only (the usual
``%/product%``, ``https://%``, ``%.pdf``) match with ``str`` methods in linear time; anything
with ``_`` or escapes goes through the automaton."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from signals_stream.patterns.matcher import MAX_SUBJECT_LENGTH, compile_like

__all__ = ["like_predicate"]


@lru_cache(maxsize=1024)
def like_predicate(pattern: str) -> Callable[[str], bool]:
    """``matches(text)`` for a SQL ``LIKE`` pattern (anchored, case-sensitive)."""
    if "_" in pattern or "\\" in pattern:
        return compile_like(pattern)
    segments = pattern.split("%")
    if len(segments) == 1:
        return pattern.__eq__
    head, *middle, tail = segments
    minimum = len(head) + len(tail) + sum(map(len, middle))

    def matches(text: str) -> bool:
        text = text[:MAX_SUBJECT_LENGTH]
        if len(text) < minimum or not text.startswith(head) or not text.endswith(tail):
            return False
        position, end = len(head), len(text) - len(tail)
        for segment in middle:  # leftmost placement is optimal: later segments get more room
            found = text.find(segment, position, end)
            if found < 0:
                return False
            position = found + len(segment)
        return True

    return matches
