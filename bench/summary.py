"""The summary table at the top of ``bench/RESULTS.md``, built from the figures the benchmarks
of one ``make bench`` left in ``bench/out/`` (``bench/report.py``). A figure whose benchmark did
not run (or failed) shows as "not run"."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

from bench.report import load

FIGURES = ("peers", "pipeline", "startup", "scale", "serving")


def _spread(values: Sequence[float], fmt: Callable[[float], str]) -> str:
    if len(values) == 1:
        return fmt(values[0])
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{fmt(mid)} ({fmt(low)}–{fmt(high)})"


def _rate(value: float) -> str:
    return f"{value / 1000:.1f}k"


def _us(value: float) -> str:
    return f"{value:.0f}"


def _s(value: float) -> str:
    return f"{value:.1f} s"


def table(figures: dict[str, dict[str, Any] | None]) -> str:
    """Markdown: one row per peer or target; medians with the range of the rounds."""
    rows = ["| measure | value | CPU µs/event |", "|---|---|---|"]
    peers, startup = figures.get("peers"), figures.get("startup")
    if peers:
        rounds = len(peers["ceiling"])
        rows.append(f"| bare consume + parse, no state | {_spread(peers['ceiling'], _rate)} | |")
        if "quix" in peers:
            rows.append(
                "| Quix Streams 3.28, parse, group_by user, tumbling count + sum | "
                f"{_spread(peers['quix'], _rate)} | {_spread(peers['quix_cpu_us'], _us)} |"
            )
            ratios = [w / q for w, q in zip(peers["one_worker"], peers["quix"], strict=True)]
            vs_quix = f"; {_spread(ratios, lambda r: f'{r:.2f}')} × Quix"
        else:
            vs_quix = ""
        rows.append(
            "| one worker, `bench/definitions.yaml` + 4 rules (20 attributes, 3 groups, 2 keys, "
            f"5 rules) | {_spread(peers['one_worker'], _rate)}{vs_quix} | "
            f"{_spread(peers['one_worker_cpu_us'], _us)} |"
        )
        rows.append(
            f"| two workers, same input | {_spread(peers['two_workers'], _rate)}; "
            f"{_spread(peers['two_vs_one'], lambda r: f'{r:.2f}')} × one worker | |"
        )
        quix_start = (
            f"Quix {_spread(peers['quix_start_to_first_s'], _s)}, " if "quix" in peers else ""
        )
        rows.append(
            "| process start to first event (bench_peers: 6 s session) | "
            f"{quix_start}worker {_spread(peers['worker_start_to_first_s'], _s)} | |"
        )
    else:
        rows.append("| peers (bench_peers.py) | not run | |")
        rounds = 0
    if startup:
        rows.append(
            "| fresh worker, default timeouts: command to first event | "
            f"{_spread(startup['fresh_first_event_s'], _s)} | |"
        )
        same = "same answer" if all(startup["restart_same_answer"]) else "ANSWER CHANGED"
        rows.append(
            "| restart with local state: command to first read served | "
            f"{_spread(startup['restart_serving_s'], _s)} ({same}) | |"
        )
    scale = figures.get("scale")
    if scale:
        rows.append(
            f"| restore {scale['entities']:,} entities into an empty state directory | "
            f"{scale['restore_s']:.1f} s, {scale['restore_s'] / scale['bare_s']:.1f} × a bare "
            f"read ({scale['bare_s']:.1f} s) | |"
        )
    serving = figures.get("serving")
    if serving:
        rows.append(
            f"| get-online-attributes, 1 id, p99, at {serving['rate']:,.0f} events/s | "
            f"owning worker {serving['owner_p99_ms']:.1f} ms, Redis (`signals-stream api`) "
            f"{serving['redis_p99_ms']:.1f} ms | |"
        )
    pipeline = figures.get("pipeline")
    if pipeline:
        rows.append(
            f"| event → SSE frame p99 at half the worker's rate (bench_pipeline) | "
            f"{pipeline['sse_p99_ms']:.0f} ms | |"
        )
    note = f"{rounds} interleaved rounds; " if rounds > 1 else ""
    return (
        "## Summary\n\n"
        f"{note}medians with the range in brackets; figures from the sections below.\n\n"
        + "\n".join(rows)
        + "\n"
    )


def current() -> str:
    return table({name: load(name) for name in FIGURES})


def clear() -> None:
    """Forget the figures of an earlier run (a benchmark that fails leaves none)."""
    from bench.report import OUT

    for name in FIGURES:
        (OUT / f"{name}.json").unlink(missing_ok=True)
