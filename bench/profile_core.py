"""Where the CPU of one event goes in the pure core, stage by stage (no broker, no RocksDB).

Runs the full benchmark workload (``bench_peers.full_workload``: ``bench/definitions.yaml``
and four more rules, 5 in all; or ``--definitions``) over generated enriched events through
the same functions the worker runs, in batches as the worker sees them:

  parse + route   ``agents.ingest_step.IngestBatch`` (parse, validate, project, group by
                  entity-events partition)
  hop encode      ``routing.records.encode_entity_event_records`` per partition
  hop decode      ``routing.records.decode_entity_events`` + ``agents.rows.add_event``
  step            ``engine.step.step_row`` per row (rows kept in a dict instead of RocksDB)

and prints microseconds per input event per stage (best of ``--rounds``). ``--profile`` adds a
cProfile of one round (top functions by own time).

Run: python bench/profile_core.py [--events 20000 --users 4000 --rounds 3 --profile]
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.ingest_step import IngestBatch  # noqa: E402
from agents.rows import PendingRows, add_event  # noqa: E402
from bench.bench_peers import full_workload  # noqa: E402
from signals_stream.devtools.generator import GeneratorConfig, generate_events  # noqa: E402
from signals_stream.engine.catalog import Catalog  # noqa: E402
from signals_stream.engine.step import step_row  # noqa: E402
from signals_stream.events.event import Event  # noqa: E402
from signals_stream.ops.stats import IngestStats  # noqa: E402
from signals_stream.registry.loader import load_definitions  # noqa: E402
from signals_stream.routing import decode_entity_events, encode_entity_event_records  # noqa: E402

PARTITIONS = 4
BATCH = 1000  # input records per poll, and entity events per entity batch (about)


def run(lines: list[bytes], catalog: Catalog, clock: Callable[[], float]) -> dict[str, float]:
    """One pass over ``lines``: seconds spent per stage."""
    plan = catalog.routing_plan()
    stats = IngestStats()
    rows: dict[bytes, bytes] = {}
    spent = dict.fromkeys(("parse+route", "hop encode", "hop decode", "step"), 0.0)
    now_ms = int(time.time() * 1000)
    for start in range(0, len(lines), BATCH):
        t0 = clock()
        batch = IngestBatch(plan, PARTITIONS, stats, 65536, now_ms)
        for offset, line in enumerate(lines[start : start + BATCH], start):
            batch.add(line, topic="in", partition=offset % 4, offset=offset, key=None)
        t1 = clock()
        records = [
            (part, record)
            for part, items in batch.by_partition.items()
            for record in encode_entity_event_records(items, 512 * 1024)
        ]
        t2 = clock()
        pending: PendingRows = {}
        for part, record in records:
            for item in decode_entity_events(record):
                add_event(pending, item, part)
        t3 = clock()
        decoded: dict[bytes, Event] = {}
        for row_key, (_part, key_name, entity_id, events) in pending.items():
            update = step_row(
                rows.get(row_key), catalog, key_name, entity_id, events, now_ms, decoded=decoded
            )
            rows[row_key] = update.row
        t4 = clock()
        for name, took in zip(spent, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            spent[name] += took
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--users", type=int, default=4_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--definitions", type=Path, help="default: the full workload")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--sort", default="tottime", help="cProfile order: tottime, cumulative")
    args = parser.parse_args()
    if args.definitions is None:
        args.definitions = full_workload(Path(tempfile.mkdtemp()) / "full.yaml")
    catalog = load_definitions(args.definitions).catalog()
    config = GeneratorConfig(users=args.users, seed=7)
    lines = [e.line for e in itertools.islice(generate_events(config), args.events)]
    best: dict[str, float] = {}
    for _ in range(args.rounds):
        spent = run(lines, catalog, time.process_time)
        best = {k: min(v, best.get(k, v)) for k, v in spent.items()}
    total = sum(best.values())
    print(f"{args.events} events, {args.users} users, {args.definitions.name}, best of "
          f"{args.rounds}: us CPU per input event")  # fmt: skip
    for name, seconds in best.items():
        print(f"  {name:<12} {seconds / args.events * 1e6:7.1f}  ({seconds / total:5.1%})")
    print(f"  {'total':<12} {total / args.events * 1e6:7.1f}")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        run(lines, catalog, time.process_time)
        profiler.disable()
        pstats.Stats(profiler).sort_stats(args.sort).print_stats(40)


if __name__ == "__main__":
    main()
