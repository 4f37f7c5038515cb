"""Latency histograms fed once per batch (exported on /metrics by ``signals_stream.ops.metrics``).

A Prometheus ``Histogram.observe`` per event takes a lock and scans the buckets: on the hot path
that is a cost per event. These take a whole batch at once: event ages are sorted (in C) and
counted with one bisection per bucket, and a record's events, which share one latency, are
added as one weighted observation. The agents run on one event loop, so no lock is needed.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

__all__ = ["LATENCY_BUCKETS_S", "BatchHistogram"]

# From a few ms (one agent batch) to an hour (a replay of old events, a long outage).
LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
)


class BatchHistogram:
    """Counts of observations per bucket (upper bounds in seconds), their number and sum.

    Negative latencies (clocks of two machines disagree) count as 0.
    """

    __slots__ = ("_counts", "bounds", "count", "sum")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS_S) -> None:
        self.bounds = tuple(sorted(bounds))
        self._counts = [0] * (len(self.bounds) + 1)  # per bucket, not cumulative; last: +Inf
        self.count = 0
        self.sum = 0.0

    def observe(self, seconds: float, weight: int = 1) -> None:
        """``weight`` observations of ``seconds`` (e.g. every event of one record)."""
        if weight <= 0:
            return
        seconds = max(0.0, seconds)
        self._counts[bisect_left(self.bounds, seconds)] += weight
        self.count += weight
        self.sum += seconds * weight

    def observe_ages(self, times_ms: list[int], now_ms: int) -> None:
        """One observation per timestamp in ``times_ms`` (sorted in place): its age at
        ``now_ms``, in seconds."""
        if not times_ms:
            return
        times_ms.sort()
        total = len(times_ms)
        # age <= bound  <=>  time >= now - bound: counted from the end of the sorted times.
        within_previous = 0
        for index, bound in enumerate(self.bounds):
            within = total - bisect_left(times_ms, now_ms - bound * 1000)
            self._counts[index] += within - within_previous
            within_previous = within
        self._counts[-1] += total - within_previous
        past = bisect_right(times_ms, now_ms)  # later times are clock skew: age 0
        self.count += total
        self.sum += (past * now_ms - sum(times_ms[:past])) / 1000

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, observations at or below it)`` per bucket, ending with +Inf."""
        buckets: list[tuple[float, int]] = []
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), self._counts, strict=True):
            running += count
            buckets.append((bound, running))
        return buckets
