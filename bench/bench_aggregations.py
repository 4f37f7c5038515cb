"""Micro-benchmark: nanoseconds per ``add`` for every reducer, lifetime and rolling, plus reads.

Run: ``python bench/bench_aggregations.py [--events N] [--rounds R]``. Single thread; each
figure is the median over rounds of (thread CPU time / events), so other tenants of a shared
box inflate it less than wall time would; loop overhead is included (a bare loop is printed
for reference). Inputs are pre-generated, event times advance ~1 s per event
(so a PT30M rolling window crosses a bucket every ~60 events, as a busy user would).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import orjson

from signals_stream.aggregations import AGGREGATIONS, get_reducer
from signals_stream.engine.windows import LifetimeWindow, RollingWindow

__all__ = ["main"]

T0 = 1_700_000_000_000
MIN = 60_000


def _values(name: str, n: int, rng: random.Random) -> list[Any]:
    if name in ("sum", "min", "max", "mean"):
        return [round(rng.uniform(0, 500), 2) for _ in range(n)]
    if name in ("counter", "time_since_first", "time_since_last"):
        return [None] * n
    if name == "approx_count_distinct":
        return [f"https://shop.example.com/p/{rng.randrange(1_000_000)}" for _ in range(n)]
    # A realistic property: 40 distinct page paths, Zipf-ish.
    paths = [f"/category/{i}/item" for i in range(40)]
    return [paths[min(int(rng.paretovariate(1.2)) - 1, 39)] for _ in range(n)]


def _time(fn: Callable[[], None], n: int, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        start = time.thread_time_ns()
        fn()
        samples.append((time.thread_time_ns() - start) / n)
    return statistics.median(samples)


def _bench_add(
    window: Any, values: list[Any], times: list[int], ids: list[str], rounds: int
) -> float:
    n = len(values)
    add = window.add
    initial = window.initial

    def run() -> None:
        state = initial()
        for i in range(n):
            state = add(state, values[i], times[i], ids[i])

    return _time(run, n, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    n, rounds = args.events, args.rounds
    rng = random.Random(42)
    times = [T0 + i * 1_000 + rng.randrange(-500, 500) for i in range(n)]
    ids = [f"{i:08x}-0000-4000-8000-000000000000" for i in range(n)]

    def bare() -> None:
        for i in range(n):
            _ = (times[i], ids[i])

    print(f"events={n} rounds={rounds}; bare loop {_time(bare, n, rounds):.0f} ns/event")
    print(
        f"{'aggregation':<24}{'lifetime add':>14}{'PT30M add':>12}{'P7D add':>10}"
        f"{'PT30M read':>12}{'row bytes':>11}{'json rt':>9}"
    )
    for name in AGGREGATIONS:
        reducer = get_reducer(name)
        values = _values(name, n, rng)
        life = _bench_add(LifetimeWindow(reducer), values, times, ids, rounds)
        short = RollingWindow(reducer, 30 * MIN)
        roll = _bench_add(short, values, times, ids, rounds)
        week = _bench_add(RollingWindow(reducer, 7 * 24 * 60 * MIN), values, times, ids, rounds)
        state = short.initial()
        for i in range(n):
            state = short.add(state, values[i], times[i], ids[i])
        now = times[-1] + 1_000
        read = _time(lambda s=state, w=short, t=now: w.read(s, t, "min"), 1, rounds * 30)
        blob = orjson.dumps(state)
        rt = _time(lambda b=blob: orjson.dumps(orjson.loads(b)), 1, rounds * 30)
        print(
            f"{name:<24}{life:>11.0f} ns{roll:>9.0f} ns{week:>7.0f} ns"
            f"{read / 1000:>9.1f} µs{len(blob):>11}{rt / 1000:>6.1f} µs"
        )

    # The worst case of the capped reducers: a new distinct value on every event past the cap.
    print("\npast the cap (a new distinct value per event, lifetime):")
    fresh = [f"/p/{i}" for i in range(n)]
    for name in ("most_frequent", "unique_list", "approx_count_distinct"):
        life = _bench_add(LifetimeWindow(get_reducer(name)), fresh, times, ids, rounds)
        print(f"  {name:<22}{life:>8.0f} ns")


if __name__ == "__main__":
    main()
