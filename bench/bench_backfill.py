"""A backfill against the live pipeline, in the same run (issue #15).

One local broker, one worker, one input topic holding a backlog of generated enriched events.
The worker's live groups are ``bench_user_recent`` and ``bench_session`` (definitions.yaml);
each round backfills a copy of ``bench_user`` (7 attributes, slots no live group reads) over
the whole topic. Phases, interleaved for ``--rounds`` rounds, each ``--seconds`` long:

- (0) once, first: the live fold of the backlog (events/s, CPU us per event), the live
  pipeline's rate;
- (I) idle: nothing produced, nothing backfilled: the worker's own timers and polls;
- (A) live only: ``--rate`` live events/s produced to the input topic;
- (B) the same live load while a backfill runs (unthrottled);
- (C) the backfill alone (no live load).

The figure asked for is B - A: the worker's CPU per live event while a backfill runs, less
the same without one (the two roads share one event loop and its batches, so their costs do
not add up and are not separable further; B - A includes folding the live events into the
backfilled group's slots, which a live event does from the publication on). Also that extra
CPU per backfill record B read, against C's per record over the idle worker's (I). Also the
live rate and lag in A and B (is the live road slowed?) and the backfill's rate alone and
under the live load against (0). The group is deleted after each round (its tasks stop), so
every A runs the same catalog.

    python bench/bench_backfill.py [--events 60000] [--rate 2000] [--seconds 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_pipeline import DEFINITIONS, cpu_seconds, stats  # noqa: E402
from bench.bench_retrieval import PARTITIONS, worker_env  # noqa: E402
from signals_stream.devtools.broker import LocalBroker  # noqa: E402
from signals_stream.devtools.generator import GeneratorConfig, generate_events  # noqa: E402
from signals_stream.devtools.produce import produce_records  # noqa: E402
from signals_stream.kafka.topics import TopicSpec, ensure_topics  # noqa: E402
from signals_stream.registry.loader import load_definitions  # noqa: E402
from tests.integration.workers import API_TOKEN, Worker  # noqa: E402

GROUPS = "/api/v1/registry/attribute_groups/"
SINCE = "2000-01-01T00:00:00+00:00"  # before every record: the whole topic


@dataclass
class Window:
    """One measured phase: worker CPU, live events ingested, backfill records read."""

    seconds: float
    cpu_s: float
    live: int
    backfill: int
    behind: int


class Bench:
    def __init__(self, session: aiohttp.ClientSession, worker: Worker, broker: str, topic: str):
        self.session, self.worker, self.broker, self.topic = session, worker, broker, topic
        self.produced = 0  # live events produced
        self.backlog = 0  # records in the topic before the first window

    async def stats(self) -> dict:
        return await stats(self.session, self.worker.url)

    async def call(self, method: str, path: str, body: dict | None = None) -> None:
        async with self.session.request(method, self.worker.url + path, json=body) as answer:
            assert answer.status == 200, await answer.text()

    async def read(self, prefix: str | None) -> int:
        tasks = (await self.stats())["backfills"]
        return sum(t["read"] for t in tasks if prefix and t["backfill"].startswith(prefix))

    async def window(
        self, seconds: float, live: list[tuple[bytes, bytes]], rate: float, prefix: str | None
    ) -> Window:
        """``seconds`` of ``rate`` live events/s (none when 0) while whatever runs runs."""
        before, read0 = await self.stats(), await self.read(prefix)
        t0, cpu0 = time.perf_counter(), cpu_seconds(self.worker.process.pid)
        if rate:
            stop = time.monotonic() + seconds

            def paced():  # noqa: ANN202
                for record in itertools.cycle(live):
                    if time.monotonic() >= stop:
                        return
                    self.produced += 1
                    yield record

            await produce_records([self.broker], self.topic, paced(), rate=rate)
        else:
            await asyncio.sleep(seconds)
        elapsed, cpu = time.perf_counter() - t0, cpu_seconds(self.worker.process.pid) - cpu0
        after, read1 = await self.stats(), await self.read(prefix)
        return Window(
            elapsed, cpu, after["good"] - before["good"], read1 - read0,
            self.produced - (after["good"] - self.backlog),
        )  # fmt: skip

    async def drop(self, name: str, version: int) -> None:
        """Unpublish and delete a group: its backfill leaves the catalog, its tasks stop."""
        link = {"attribute_groups": [{"name": name, "version": version}]}
        await self.call("POST", "/api/v1/engines/unpublish", link)
        await self.call("DELETE", f"{GROUPS}{name}/versions/{version}")

    async def start_backfill(self, group: dict, name: str) -> str:
        await self.call("POST", GROUPS, {**group, "name": name, "backfill_since_tstamp": SINCE})
        prefix = f"{name}:"
        while await self.read(prefix) == 0:  # its tasks started reading (after the settle)
            await asyncio.sleep(0.1)
        return prefix


async def live_fold(bench: Bench, events: int) -> tuple[float, float]:
    """(0): the backlog folded live: events/s and CPU us per event."""
    while (await bench.stats())["good"] == 0:
        await asyncio.sleep(0.05)
    t0, cpu0 = time.perf_counter(), cpu_seconds(bench.worker.process.pid)
    while (await bench.stats())["good"] < events:
        await asyncio.sleep(0.1)
    while True:  # and folded: applied stops moving
        before = (await bench.stats())["applied"]
        await asyncio.sleep(0.5)
        if (await bench.stats())["applied"] == before:
            break
    elapsed = time.perf_counter() - t0 - 0.5
    cpu = cpu_seconds(bench.worker.process.pid) - cpu0
    return events / elapsed, cpu / events * 1e6


def _summary(label: str, values: list[float], unit: str) -> str:
    low, high = min(values), max(values)
    return f"{label}: median {statistics.median(values):,.1f} {unit} ({low:,.1f}-{high:,.1f})"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=60_000, help="backlog in the topic")
    parser.add_argument("--users", type=int, default=8_000)
    parser.add_argument("--rate", type=float, default=2000.0, help="live events/s in A and B")
    parser.add_argument("--seconds", type=float, default=10.0, help="each window")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    start_ms = int(time.time() * 1000) - 3_600_000
    backlog_events = generate_events(GeneratorConfig(users=args.users, seed=1, start_ms=start_ms))
    backlog = [(e.key, e.line) for e, _ in zip(backlog_events, range(args.events), strict=False)]
    live_events = generate_events(GeneratorConfig(users=args.users, seed=2, start_ms=start_ms))
    live = [(e.key, e.line) for e, _ in zip(live_events, range(20_000), strict=False)]
    groups = {
        g.name: {**g.to_wire(), "is_published": True} for g in load_definitions(DEFINITIONS).groups
    }
    filled = groups.pop("bench_user")
    version = filled["version"]
    with LocalBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        topic = f"bf-bench-{uuid.uuid4().hex[:6]}-in"
        await ensure_topics([broker.bootstrap], [TopicSpec(topic, PARTITIONS)])
        env = worker_env(broker, topic, Path(tmp) / "w", f"bf-{uuid.uuid4().hex[:6]}", None)
        worker = Worker(env, Path(tmp) / "worker.log")
        headers = {"Authorization": f"Bearer {API_TOKEN}"}
        try:
            worker.wait_healthy()
            async with aiohttp.ClientSession(headers=headers) as session:
                bench = Bench(session, worker, broker.bootstrap, topic)
                for body in groups.values():  # live before the backlog arrives
                    await bench.call("POST", GROUPS, body)
                await asyncio.sleep(1.5)
                producing = asyncio.create_task(produce_records([broker.bootstrap], topic, backlog))
                live_rate, live_us = await live_fold(bench, len(backlog))
                await producing
                bench.backlog = len(backlog)
                print(f"(0) live fold of the backlog: {live_rate:,.0f} events/s, ", end="")
                print(f"{live_us:.0f} us CPU/event", flush=True)
                rows: list[Round] = []
                for round_ in range(1, args.rounds + 1):
                    idle = await bench.window(args.seconds, live, 0, None)
                    a = await bench.window(args.seconds, live, args.rate, None)
                    prefix = await bench.start_backfill(filled, f"bf_b{round_}")
                    b = await bench.window(args.seconds, live, args.rate, prefix)
                    await bench.drop(f"bf_b{round_}", version)
                    prefix = await bench.start_backfill(filled, f"bf_c{round_}")
                    c = await bench.window(args.seconds, live, 0, prefix)
                    await bench.drop(f"bf_c{round_}", version)
                    rows.append(Round(idle, a, b, c))
                    print(f"round {round_}: {rows[-1].describe()}", flush=True)
                    await asyncio.sleep(2.5)  # the deleted groups' tasks stop (checked every 2 s)
        finally:
            worker.stop()
    report(rows, live_rate)


@dataclass
class Round:
    """(I) idle, (A) live, (B) live + backfill, (C) backfill alone, in one round."""

    idle: Window
    a: Window
    b: Window
    c: Window

    @property
    def live_us(self) -> float:
        """The whole worker's CPU per live event, without a backfill."""
        return self.a.cpu_s / self.a.live * 1e6

    @property
    def during_us(self) -> float:
        """The same while a backfill runs (one event loop: the two roads share its batches,
        so their costs are not separable; B - A is what the backfill adds)."""
        return self.b.cpu_s / self.b.live * 1e6

    @property
    def added_per_record_us(self) -> float:
        """B's CPU over A's (same live load), per backfill record B read."""
        return (
            (self.b.cpu_s - self.a.cpu_s / self.a.seconds * self.b.seconds) / self.b.backfill * 1e6
        )

    @property
    def backfill_us(self) -> float:
        """C's CPU over the idle worker's, per backfill record."""
        idle = self.idle.cpu_s / self.idle.seconds * self.c.seconds
        return (self.c.cpu_s - idle) / self.c.backfill * 1e6

    def describe(self) -> str:
        cores = "/".join(f"{w.cpu_s / w.seconds:.2f}" for w in (self.idle, self.a, self.b, self.c))
        a, b, c = self.a, self.b, self.c
        return (
            f"cores I/A/B/C {cores}; (A) {a.live / a.seconds:,.0f} live/s, "
            f"{self.live_us:.0f} us/event, {a.behind} behind; (B) {b.live / b.seconds:,.0f} "
            f"live/s + {b.backfill / b.seconds:,.0f} backfill/s, {self.during_us:.0f} us/live "
            f"event, {b.behind} behind; (C) {c.backfill / c.seconds:,.0f} backfill/s, "
            f"{self.backfill_us:.0f} us/record"
        )


def report(rows: list[Round], live_rate: float) -> None:
    a_us = [r.live_us for r in rows]
    during = [r.during_us for r in rows]
    added = [d - a for d, a in zip(during, a_us, strict=True)]
    live_ratio = [r.b.live / r.b.seconds / (r.a.live / r.a.seconds) for r in rows]
    b_rate = [r.b.backfill / r.b.seconds for r in rows]
    c_rate = [r.c.backfill / r.c.seconds for r in rows]
    lines = [
        _summary("(A) worker CPU per live event, no backfill", a_us, "us"),
        _summary("(B) worker CPU per live event while a backfill runs", during, "us"),
        _summary("    added per live event (B - A)", added, "us"),
        _summary(
            "    added per backfill record read in B", [r.added_per_record_us for r in rows], "us"
        ),
        _summary("    live rate during the backfill / without", live_ratio, "x"),
        _summary("(B) backfill rate under the live load", b_rate, "records/s"),
        _summary("(C) backfill rate alone", c_rate, "records/s"),
        _summary(
            "(C) CPU per backfill record over the idle worker", [r.backfill_us for r in rows], "us"
        ),
        f"(C) / (0) backfill alone vs the live fold of the backlog: "
        f"{statistics.median(c_rate) / live_rate:.2f} x; "
        f"(B) / (0): {statistics.median(b_rate) / live_rate:.2f} x",
        f"live lag at the windows' end (events): A {[r.a.behind for r in rows]}, "
        f"B {[r.b.behind for r in rows]}",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    asyncio.run(main())
