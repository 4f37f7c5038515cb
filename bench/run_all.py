"""Run every benchmark in turn (``make bench``) and write ``bench/RESULTS.md``: the date, the
machine, each command and what it printed. Each benchmark reports ratios against its own
baseline, measured in the same run, because these machines are shared and noisy. A summary
table (``bench/summary.py``) heads the file: the peers' interleaved rounds, start-up, restore,
reads under load and latency, from the figures each benchmark left in ``bench/out/``.

    python bench/run_all.py [--quick]     # --quick: smaller sizes, for a smoke run
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import summary  # noqa: E402

HERE = Path(__file__).parent
PREVIOUS_LATENCY_DEFAULTS = (
    "before:SIGNALS_CONSUMER_FETCH_MAX_WAIT_MS=100,SIGNALS_AGENT_BATCH_WITHIN_MS=20,"
    "SIGNALS_PRODUCER_LINGER_MS=5"
)
FULL = [
    ["bench_parser.py"],
    ["bench_aggregations.py"],
    ["bench_pipeline.py"],
    ["bench_peers.py", "--rounds", "3"],
    ["bench_startup.py"],
    ["bench_registry.py"],
    # The previous defaults as the in-run baseline of the current ones.
    ["bench_latency.py", "--config", PREVIOUS_LATENCY_DEFAULTS],
    ["bench_retrieval.py", "--rounds", "2"],
    ["bench_serving.py"],
    ["bench_event_logs.py"],
    ["bench_scale.py", "--entities", "1000000"],
    ["bench_batch.py"],
    ["bench_browser.py"],
    ["bench_backfill.py"],
    ["bench_sync.py", "--rows", "1000000"],
]
QUICK = [
    ["bench_parser.py"],
    ["bench_aggregations.py"],
    ["bench_pipeline.py", "--events", "20000", "--users", "4000"],
    ["bench_peers.py", "--events", "20000", "--users", "4000"],
    ["bench_startup.py", "--rounds", "1", "--events", "5000"],
    ["bench_registry.py", "--publishes", "10", "--reads", "50"],
    ["bench_latency.py", "--events", "10000", "--probes", "100"],
    ["bench_retrieval.py", "--events", "10000", "--users", "2000", "--rounds", "1"],
    ["bench_serving.py", "--reads", "50", "--rate", "1000", "--users", "2000"],
    [
        "bench_event_logs.py",
        "--events",
        "10000",
        "--users",
        "2000",
        "--rounds",
        "1",
        "--reads",
        "50",
    ],
    ["bench_scale.py", "--entities", "50000"],
    ["bench_batch.py", "--copies", "60", "--stream-copies", "12"],
    ["bench_browser.py", "--events", "2000", "--clicks", "10"],
    ["bench_backfill.py", "--events", "10000", "--users", "2000"],
    ["bench_sync.py", "--rows", "50000"],
]


def machine() -> str:
    memory = "?"
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kib = int(meminfo.read_text().split("\n", 1)[0].split()[1])
        memory = f"{kib / 1024 / 1024:.0f} GiB"
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, {memory} RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}; the local broker (Tansu) "
        "runs on the same cores"
    )


def main() -> int:
    plan = QUICK if "--quick" in sys.argv else FULL
    sections = []
    failed = 0
    summary.clear()
    for args in plan:
        command = f"python bench/{' '.join(args)}"
        print(f"\n=== {command} ===", flush=True)
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, str(HERE / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            check=False,
        )
        print(result.stdout, end="", flush=True)
        if result.returncode:
            failed += 1
            print(result.stderr[-3000:], file=sys.stderr, flush=True)
        output = result.stdout.strip() or result.stderr.strip()[-2000:]
        sections.append(
            f"## `{command}`\n\n{time.monotonic() - started:.0f} s, exit {result.returncode}\n\n"
            f"```\n{output}\n```\n"
        )
    header = (
        "# Benchmark results\n\n"
        f"Taken {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}.\n"
        f"Command: `python bench/run_all.py{' --quick' if plan is QUICK else ''}` "
        "(`make bench`). Read the ratios: absolute figures move with the machine's load.\n"
    )
    (HERE / "RESULTS.md").write_text(header + "\n" + summary.current() + "\n" + "\n".join(sections))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
