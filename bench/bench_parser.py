"""Benchmark of the enriched-event parser (the ingest hot path).

Run: ``python bench/bench_parser.py [--records 100000] [--repeat 3]``

Input: the real sample lines in ``../shared/data`` (next to the repository; override with the
``SIGNALS_TEST_DATA`` environment variable): the 73 events of
``kafka-live-viewer-profiles/micro.1.tsv`` and the 48 valid lines of
``snowplow-rdb-loader/widerow-json.input-events.tsv``, repeated to ``--records`` records.

Reported, best of ``--repeat`` runs and timed in CPU seconds of this process (the machine is
shared, so wall time would also count other processes): events/s of a bare
``line.split(b"\\t")`` loop (the floor any Python parser pays), of :func:`parse_record` on
all lines, per data set and on the JSON form of the same events, and of :meth:`Event.project`
plus :meth:`Event.from_projection` for a typical and a full projection; each also as a ratio
to the split baseline.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from signals_stream.events.parse import Event, Projection, parse_record

__all__ = ["main"]

logger = logging.getLogger(__name__)

_SOURCES = (
    ("micro", "kafka-live-viewer-profiles/micro.1.tsv"),
    ("rdb-loader", "snowplow-rdb-loader/widerow-json.input-events.tsv"),
)
_TYPICAL = Projection(
    atomic=frozenset({"domain_userid", "domain_sessionid", "user_id", "page_urlpath"}),
    entity_keys=frozenset({"contexts_com_snowplowanalytics_snowplow_web_page_1"}),
)


def _data_dir() -> Path:
    override = os.environ.get("SIGNALS_TEST_DATA")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _load(data_dir: Path) -> dict[str, list[bytes]]:
    lines: dict[str, list[bytes]] = {}
    for name, path in _SOURCES:
        raw = (data_dir / path).read_bytes().split(b"\n")
        lines[name] = [line for line in raw if line.count(b"\t") == 130]
    return lines


def _repeat_to(lines: Sequence[Any], count: int) -> list[Any]:
    return [lines[i % len(lines)] for i in range(count)]


def _best_rate(
    func: Callable[[Any], object], records: Sequence[Any], repeat: int
) -> tuple[float, float]:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        for record in records:
            func(record)
        best = min(best, time.process_time() - start)
    return best, len(records) / best


def _split(record: bytes) -> object:
    return record.split(b"\t")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print a table.

    Args:
        argv: command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit code.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    data_dir = _data_dir()
    lines = _load(data_dir)
    everything = [line for group in lines.values() for line in group]
    records = _repeat_to(everything, args.records)
    mean_size = sum(map(len, everything)) / len(everything)
    print(f"data: {data_dir} ({len(everything)} distinct lines, mean {mean_size:.0f} bytes)")
    print(
        f"records per run: {len(records)}, best of {args.repeat}, Python {sys.version.split()[0]}"
    )

    events = [parse_record(r) for r in everything]
    typical = [e.project(_TYPICAL) for e in events]
    full = [e.project(Projection(all_fields=True)) for e in events]
    event_records = _repeat_to(events, args.records)
    rows: list[tuple[str, int, float, float]] = []

    def measure(name: str, func: Callable[[Any], object], inputs: Sequence[Any]) -> None:
        seconds, rate = _best_rate(func, inputs, args.repeat)
        rows.append((name, len(inputs), seconds, rate))

    measure("baseline: line.split(b'\\t')", _split, records)
    measure("parse_record (all lines)", parse_record, records)
    for name, group in lines.items():
        measure(f"parse_record ({name} only)", parse_record, _repeat_to(group, args.records))
    as_json = [orjson.dumps(e.to_shredded_json()) for e in events]
    measure("parse_record (JSON form)", parse_record, _repeat_to(as_json, args.records))
    full_projection = Projection(all_fields=True)
    measure("project (typical)", lambda e: e.project(_TYPICAL), event_records)
    measure("from_projection (typical)", Event.from_projection, _repeat_to(typical, args.records))
    measure("project (all_fields)", lambda e: e.project(full_projection), event_records)
    measure("from_projection (all_fields)", Event.from_projection, _repeat_to(full, args.records))

    baseline = rows[0][3]
    print(f"\n{'operation':34s} {'records':>8s} {'seconds':>8s} {'events/s':>10s} {'vs split':>9s}")
    for name, count, seconds, rate in rows:
        print(f"{name:34s} {count:8d} {seconds:8.3f} {rate:10,.0f} {rate / baseline:9.3f}")
    sizes = (sum(map(len, typical)) / len(typical), sum(map(len, full)) / len(full))
    print(f"\nprojection size: typical {sizes[0]:.0f} bytes, all_fields {sizes[1]:.0f} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
