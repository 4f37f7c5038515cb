"""Throughput of one worker against its peers, interleaved rounds on the same input (issue #13).

Per round, in a rotating order, on one pre-produced topic and one broker:

  ceiling  a bare aiokafka consume + parse loop (``bench_pipeline.ceiling``);
  quix     Quix Streams, tumbling 1-minute count + sum per user (``bench_peers.run_quix``);
  two      one worker, 2 attributes on ``domain_userid``: count and sum of ``se_value`` over
           PT1M (Quix's computation);
  full     one worker, the full workload (``bench_peers.full_workload``: 20 attributes,
           3 groups, 2 keys, 5 rules).

A variant named ``<name>@base`` runs the same worker variant from the source tree given by
``--base`` (e.g. ``git worktree add /tmp/base main``): before/after in the same run.

Each run is printed as it ends; the summary gives medians and ranges of events/s and CPU us per
event, and each worker variant's ratio to Quix *within its round* (median and range).

Run: python bench/bench_throughput.py [--rounds 3] [--events 100000] [--users 20000]
     [--variants ceiling,quix,two,full,full@base --base /tmp/base] [--spy DIR]

``--spy DIR`` records each worker run with py-spy (from healthy to the last event applied,
raw collapsed stacks in ``DIR/<round>-<variant>.txt``; ``bench/spy_stages.py`` sums them by
stage). The sampling costs the worker CPU: compare spied runs only with spied runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_peers import OUT, full_workload, run_quix, worker_env  # noqa: E402
from bench.bench_pipeline import PARTITIONS, ceiling, measure_worker  # noqa: E402
from signals_stream.devtools.broker import LocalBroker  # noqa: E402
from signals_stream.devtools.generator import GeneratorConfig, generate_events  # noqa: E402
from signals_stream.devtools.produce import produce_records  # noqa: E402
from signals_stream.events.parse import parse_record  # noqa: E402
from signals_stream.kafka.topics import TopicSpec, ensure_topics  # noqa: E402
from signals_stream.registry.loader import load_definitions  # noqa: E402
from signals_stream.routing import entity_projections  # noqa: E402
from tests.integration.workers import Worker  # noqa: E402

TWO_ATTRIBUTES = {
    "attribute_groups": [
        {
            "name": "bench_two",
            "version": 1,
            "owner": "bench@example.com",
            "attribute_key": {"name": "domain_userid"},
            "attributes": [
                {"name": "events_1m", "type": "int32", "aggregation": "counter", "period": "PT1M"},
                {
                    "name": "se_value_1m",
                    "type": "double",
                    "aggregation": "sum",
                    "period": "PT1M",
                    "property": {"type": "atomic", "name": "se_value"},
                },
            ],
        }
    ]
}


def expected_applied(lines: list[bytes], definitions: Path) -> int:
    plan = load_definitions(definitions).catalog().routing_plan()
    return sum(len(entity_projections(parse_record(line), plan)) for line in lines)


ROOT = Path(__file__).resolve().parents[1]


async def run_worker(
    broker: LocalBroker,
    topic: str,
    tmp: Path,
    definitions: Path,
    expected: int,
    events: int,
    tree: Path,
    spy: Path | None = None,
) -> dict[str, float]:
    """One worker started from the source tree ``tree`` (first on its ``PYTHONPATH``);
    ``spy``: py-spy's output file (sampling from healthy to the end)."""
    app_id = f"thr-{uuid.uuid4().hex[:6]}"
    env = worker_env(broker, app_id, topic, tmp / app_id, definitions)
    worker = Worker({**env, "PYTHONPATH": str(tree)}, tmp / f"{app_id}.log")
    spying = None
    try:
        worker.wait_healthy()
        if spy is not None:
            spying = start_spy(worker.process.pid, spy)
        return await measure_worker(worker, expected, events)
    finally:
        if spying is not None:
            spying.send_signal(signal.SIGINT)  # py-spy writes what it recorded and exits
            spying.wait(timeout=60)
        worker.stop()


def start_spy(pid: int, out: Path) -> subprocess.Popen[bytes]:
    spy = Path(sys.executable).with_name("py-spy")
    command = [str(spy) if spy.exists() else "py-spy", "record", "--pid", str(pid)]
    command += ["--format", "raw", "--rate", "100", "--nonblocking", "-o", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summary(runs: list[dict[str, object]]) -> None:
    print(
        "\nvariant   events/s median [range]      us CPU/event median [range]   x Quix (same round)"
    )
    by_round = {(r["round"], r["variant"]): r for r in runs}
    for variant in dict.fromkeys(str(r["variant"]) for r in runs):
        mine = [r for r in runs if r["variant"] == variant]
        rates = [float(r["events_per_s"]) for r in mine]  # type: ignore[arg-type]
        cpus = [float(r["cpu_us_per_event"]) for r in mine if r.get("cpu_us_per_event")]  # type: ignore[arg-type]
        ratios = [
            float(r["events_per_s"]) / float(by_round[(r["round"], "quix")]["events_per_s"])  # type: ignore[arg-type]
            for r in mine
            if (r["round"], "quix") in by_round
        ]
        cpu = (
            f"{statistics.median(cpus):6.0f} [{min(cpus):.0f}-{max(cpus):.0f}]"
            if cpus
            else "     -"
        )
        ratio = (
            f"{statistics.median(ratios):.2f} [{min(ratios):.2f}-{max(ratios):.2f}]"
            if ratios
            else "-"
        )
        print(
            f"{variant:<9} {statistics.median(rates):8,.0f} [{min(rates):,.0f}-{max(rates):,.0f}]"
            f"    {cpu:<28} {ratio}"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--variants", default="ceiling,quix,two,full")
    parser.add_argument("--base", type=Path, help="source tree of the @base variants")
    parser.add_argument("--spy", type=Path, help="py-spy each worker run into this directory")
    args = parser.parse_args()
    os.chdir(tempfile.gettempdir())  # the workers import from PYTHONPATH, not from the cwd
    variants = args.variants.split(",")
    generated = generate_events(
        GeneratorConfig(users=args.users, seed=1, start_ms=int(time.time() * 1000) - 3_600_000)
    )
    records = [(ev.key, ev.line) for ev, _ in zip(generated, range(args.events), strict=False)]
    lines = [line for _, line in records]
    runs: list[dict[str, object]] = []
    with LocalBroker() as broker, tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        full = full_workload(tmp / "full.yaml")
        two = tmp / "two.yaml"
        two.write_text(yaml.safe_dump(TWO_ATTRIBUTES))
        expected = {"full": expected_applied(lines, full), "two": expected_applied(lines, two)}
        topic = f"thr-{uuid.uuid4().hex[:6]}-in"
        await ensure_topics([broker.bootstrap], [TopicSpec(topic, PARTITIONS)])
        await produce_records([broker.bootstrap], topic, records)
        for round_no in range(args.rounds):
            order = variants[round_no % len(variants) :] + variants[: round_no % len(variants)]
            for variant in order:
                run: dict[str, object] = {"round": round_no, "variant": variant}
                if variant == "ceiling":
                    run["events_per_s"] = await ceiling(broker.bootstrap, topic, len(lines))
                elif variant == "quix":
                    quix = run_quix(broker.bootstrap, topic, len(lines), tmp / f"quix-{round_no}")
                    run["events_per_s"] = quix["events"] / quix["seconds"]
                    run["cpu_us_per_event"] = quix["cpu_seconds"] / quix["events"] * 1e6
                else:
                    name, _, base = variant.partition("@")
                    definitions = full if name == "full" else two
                    tree = args.base if base else ROOT
                    spy = None
                    if args.spy is not None:
                        args.spy.mkdir(parents=True, exist_ok=True)
                        spy = args.spy / f"{round_no}-{variant}.txt"
                    run.update(
                        await run_worker(
                            broker, topic, tmp, definitions, expected[name], len(lines), tree, spy
                        )
                    )
                runs.append(run)
                cpu = run.get("cpu_us_per_event")
                print(
                    f"round {round_no} {variant:<8} {float(run['events_per_s']):9,.0f} events/s"  # type: ignore[arg-type]
                    + (f"  {float(cpu):5.0f} us CPU/event" if cpu else ""),  # type: ignore[arg-type]
                    flush=True,
                )
    summary(runs)
    OUT.mkdir(exist_ok=True)
    (OUT / "throughput.json").write_bytes(orjson.dumps(runs, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    asyncio.run(main())
