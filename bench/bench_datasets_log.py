"""A training dataset from the log (issue #18): anchors/s, events/s and peak memory of
``signals-stream dataset build --from log`` against a bare read of the same log, same run.

One local broker, one topic of generated enriched events (``--events``, default 1,000,000).
(a) The baseline: a child process reads every partition of the topic to its end with the
same reader (``kafka/log_window``) and parses each record (``events.parse``), nothing else.
(b) The build: ``dataset build`` (a child process, the CLI) for ``--anchors`` (default
100,000) anchors of random users at random moments of the generated span, over
``bench_user`` (definitions.yaml, 7 attributes on domain_userid), to Parquet. Peak memory is
each child's maximum resident set (``wait4``).

With ``--session-anchors`` the build finds its anchors in the log instead: session anchors
(goal: an ecommerce ``transaction``; page pings excluded; at most 5 per session; negatives
sampled to 5 x the positives), over the same group.

    python bench/bench_datasets_log.py [--events 1000000] [--anchors 100000] [--users 20000]
        [--session-anchors]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_pipeline import DEFINITIONS  # noqa: E402
from bench.bench_retrieval import PARTITIONS, worker_env  # noqa: E402
from signals_stream.devtools.broker import LocalBroker  # noqa: E402
from signals_stream.devtools.generator import GeneratorConfig, generate_events  # noqa: E402
from signals_stream.devtools.produce import produce_records  # noqa: E402
from signals_stream.events.fields import FIELD_NAMES  # noqa: E402
from signals_stream.kafka.topics import TopicSpec, ensure_topics  # noqa: E402
from signals_stream.registry.loader import load_definitions  # noqa: E402

DUID = FIELD_NAMES.index("domain_userid")
_BARE_READ = """
import asyncio, sys
from signals_stream.events.parse import parse_record
from signals_stream.kafka.log_window import read_log_window
async def main():
    n = 0
    async for batch in read_log_window([sys.argv[1]], sys.argv[2], 0):
        for record in batch:
            parse_record(record.value)
            n += 1
    print(n)
asyncio.run(main())
"""


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))


def _session_anchors(start_ms: int, end_ms: int) -> dict[str, object]:
    action = {"type": "event", "vendor": "com.snowplowanalytics.snowplow.ecommerce",
              "name": "snowplow_ecommerce_action", "major_version": 1, "path": "type"}  # fmt: skip
    goal = {"all": [{"property": action, "operator": "=", "value": "transaction"}]}
    span = {"start_time": _iso(start_ms), "end_time": _iso(end_ms + 1000)}
    return {"mode": "session", "training_span": span, "max_anchors_per_session": 5,
            "goal_criteria": goal}  # fmt: skip


def _child(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(seconds, peak RSS MiB, stdout) of a child process."""
    began = time.perf_counter()
    child = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = child.stdout.read() if child.stdout else b""
    err = child.stderr.read() if child.stderr else b""
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - began
    if child.returncode != 0:
        raise SystemExit(f"{args[:4]} failed: {err.decode()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, out.decode() + err.decode()[-300:]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--anchors", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--session-anchors", action="store_true")
    args = parser.parse_args()
    start_ms = int(time.time() * 1000) - 7 * 86_400_000
    config = GeneratorConfig(users=args.users, seed=1, start_ms=start_ms)
    records = (
        (ev.key, ev.line)
        for ev, _ in zip(generate_events(config), range(args.events), strict=False)
    )
    group = next(g for g in load_definitions(DEFINITIONS).groups if g.name == "bench_user")
    with LocalBroker() as broker, tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        topic = f"ds-bench-{uuid.uuid4().hex[:6]}-in"
        await ensure_topics([broker.bootstrap], [TopicSpec(topic, PARTITIONS)])
        summary = await produce_records([broker.bootstrap], topic, records, total=args.events)
        print(f"produced {summary.describe()}", flush=True)
        sample = zip(generate_events(config), range(min(args.events, 200_000)), strict=False)
        ids = [ev.line.split(b"\t")[DUID].decode() for ev, _ in sample]
        ids = sorted({i for i in ids if i})
        end_ms = int(time.time() * 1000)
        rng = random.Random(1)
        anchors = tmp / "anchors.csv"
        with anchors.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["domain_userid", "anchor_ts", "label"])
            for _ in range(args.anchors):
                t = rng.randrange(start_ms, end_ms)
                stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t // 1000))
                writer.writerow([rng.choice(ids), f"{stamp}.{t % 1000:03d}", rng.randrange(2)])
        spec = tmp / "spec.yaml"
        body = {
            "anchors": _session_anchors(start_ms, end_ms)
            if args.session_anchors
            else {"mode": "user_supplied", "source": {"table": "anchors"}},
            "attributes": {"attribute_groups": [group.to_wire()]},
        }
        spec.write_text(yaml.safe_dump(body))
        anchor_args = [] if args.session_anchors else ["--anchors", str(anchors)]
        env = {**os.environ, **worker_env(broker, topic, tmp / "state", definitions=None)}
        bare_s, bare_mb, counted = _child(
            [sys.executable, "-c", _BARE_READ, broker.bootstrap, topic], env
        )
        print(f"(a) bare read + parse: {int(counted.split()[0]):,} records in {bare_s:.1f} s "
              f"= {args.events / bare_s:,.0f} events/s, peak {bare_mb:.0f} MiB",
              flush=True)  # fmt: skip
        build_s, build_mb, said = _child(
            [sys.executable, "-m", "signals_stream.cli", "dataset", "build", str(spec),
             "--from", "log", "--out", str(tmp / "out.parquet"), *anchor_args, "--no-progress"],
            env,
        )  # fmt: skip
        built = int(said.strip().splitlines()[-1].split()[0].replace(",", ""))
        print(f"(b) dataset build: {built:,} anchors over {args.events:,} events in "
              f"{build_s:.1f} s = {built / build_s:,.0f} anchors/s, "
              f"{args.events / build_s:,.0f} events/s ({build_s / bare_s:.2f} x the bare read), "
              f"peak {build_mb:.0f} MiB", flush=True)  # fmt: skip
        print(said.strip().splitlines()[-1])


if __name__ == "__main__":
    asyncio.run(main())
