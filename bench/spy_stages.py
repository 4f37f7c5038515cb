"""Sum py-spy samples of a worker by pipeline stage (``bench_throughput.py --spy DIR``).

Each sample (a raw collapsed stack) goes to the stage of the deepest frame that names one
(``STAGES``, first match per frame), so a stage's share is inclusive of the library code it
calls (orjson, RocksDB, aiokafka's accumulator). ``--cpu-us`` (the run's CPU per event)
turns shares into microseconds per input event.

Run: python bench/spy_stages.py FILE [FILE ...] [--cpu-us 110] [--top 25]
"""

from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path

# (stage, function names as py-spy prints them); a frame's first match wins, the deepest
# matching frame of a sample decides.
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ingest: consume (aiokafka getmany)", ("AIOKafkaConsumer.getmany",)),
    ("ingest: parse + validate", ("parse_record", "parse_tsv", "parse_json")),
    ("ingest: route + project", ("route_event", "entity_projections", "Event.project")),
    ("ingest: batch bookkeeping", ("IngestBatch.add", "ingest_record")),
    ("hop: encode", ("encode_entity_event_records",)),
    ("hop: produce", ("Forwarder.send_entity_events",)),
    ("hop: decode + queue", ("decode_entity_events", "add_event")),
    ("entity: projection decode", ("Event.from_projection",)),
    ("entity: rules", ("fire_interventions", "watched_values")),
    ("entity: fold", ("apply_record", "fold_events", "prune_row")),
    ("entity: row decode/encode", ("decode_row", "encode_row")),
    ("entity: step (rest)", ("step_row",)),
    ("entity: RocksDB get", ("RowStore.get",)),
    ("entity: changelog send", ("RowStore._log", "RowStore._send", "RowStore.finish_batch")),
    ("entity: RocksDB put (+ send before batching)", ("RowStore.put", "RowStore.delete")),
    ("entity: intervention send", ("write_rows",)),  # what write_rows runs itself: the sends
    ("entity: agent loop", ("register_entities.<locals>.entities",)),
    ("faust: consumer thread", ("ServiceThread._start_thread",)),
    ("aiokafka: producer sender", ("Sender.",)),
    ("lean ingest: rest", ("LeanIngest.",)),
)
_LINE = re.compile(r":\d+\)$")


def stage_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        name = frame.split(" (", 1)[0]
        for stage, names in STAGES:
            if any(name == n or (n.endswith(".") and name.startswith(n)) for n in names):
                return stage
    return "other (event loop, Faust streams, start-up)"


def summarise(paths: list[Path]) -> tuple[collections.Counter[str], collections.Counter[str]]:
    stages: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    for path in paths:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack:
                continue
            frames = [_LINE.sub(")", frame) for frame in stack.split(";")]
            stages[stage_of(frames)] += int(count)
            leaves[frames[-1]] += int(count)
    return stages, leaves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--cpu-us", type=float, help="the run's CPU us per input event")
    parser.add_argument("--top", type=int, default=20, help="functions by own samples")
    args = parser.parse_args()
    stages, leaves = summarise(args.files)
    total = sum(stages.values())
    print(f"{total} samples")
    order = [stage for stage, _ in STAGES] + ["other (event loop, Faust streams, start-up)"]
    for stage in order:
        share = stages[stage] / total
        us = f"{share * args.cpu_us:6.1f} us" if args.cpu_us else ""
        print(f"  {share:6.1%} {us}  {stage}")
    print("own samples:")
    for frame, count in leaves.most_common(args.top):
        print(f"  {count / total:6.1%}  {frame}")


if __name__ == "__main__":
    main()
