"""Run every benchmark in turn (``make bench``); each prints ratios against its own baseline,
measured in the same run, because these machines are shared and noisy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
BENCHES = ["bench_parser.py", "bench_aggregations.py", "bench_pipeline.py", "bench_registry.py"]


def main() -> int:
    failed = 0
    for name in BENCHES:
        print(f"\n=== {name} ===", flush=True)
        failed += subprocess.call(
            [sys.executable, str(HERE / name), *sys.argv[1:]]
            if name == "bench_pipeline.py"
            else [sys.executable, str(HERE / name)]
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
