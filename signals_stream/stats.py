"""Counters of what the stream did, kept in-process (logged, and exported on /metrics)."""

from __future__ import annotations

from collections import Counter

__all__ = ["IngestStats"]


class IngestStats:
    """Good and bad input records (bad ones by reason) and records forwarded to entities."""

    __slots__ = ("bad", "forwarded", "good", "replays_skipped")

    def __init__(self) -> None:
        self.good = 0
        self.forwarded = 0
        self.replays_skipped = 0
        self.bad: Counter[str] = Counter()

    def summary(self) -> str:
        bad = ", ".join(f"{reason}={n}" for reason, n in sorted(self.bad.items())) or "none"
        return (
            f"good={self.good} bad={sum(self.bad.values())} ({bad}) "
            f"forwarded={self.forwarded} replays_skipped={self.replays_skipped}"
        )
