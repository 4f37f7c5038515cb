"""The ``signals-stream`` command line.

signals-stream worker [FAUST WORKER OPTIONS]   run a Faust worker
signals-stream api                             stateless Signals API over the Redis store
signals-stream dev                             embedded stack: broker + worker + live events
signals-stream broker                          run only the local Kafka-compatible broker
signals-stream generate                        synthetic enriched events, as TSV or to a topic
signals-stream replay FILE...                  produce TSV / NDJSON events into the input topic
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from signals_stream.errors import ConfigurationError, SignalsStreamError
from signals_stream.settings import Settings, load_settings

if TYPE_CHECKING:
    from signals_stream.devtools.produce import ProduceSummary

__all__ = ["main"]

logger = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] == "worker":
        return _run_worker(args_list[1:])
    parser = _build_parser()
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help()
        return 2
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = load_settings()
        return int(args.handler(args, settings) or 0)
    except ConfigurationError as exc:
        print(f"signals-stream: {exc}", file=sys.stderr)
        return 2
    except SignalsStreamError as exc:
        print(f"signals-stream: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="signals-stream",
        description="Real-time Snowplow Signals-compatible attributes and interventions on Faust.",
        epilog="Settings come from SIGNALS_* environment variables; see the README.",
    )
    sub = parser.add_subparsers(dest="command")
    sub.add_parser(
        "worker",
        help="run a Faust worker (all `faust worker` options pass through)",
        add_help=False,
    )

    dev = sub.add_parser("dev", help="embedded stack: local broker, one worker, live events")
    dev.add_argument("--rate", type=float, default=20.0, help="generated events per second")
    dev.add_argument("--users", type=int, default=50, help="simulated users")
    dev.add_argument("--no-events", action="store_true", help="do not feed generated events")
    dev.set_defaults(handler=_cmd_dev)

    broker = sub.add_parser("broker", help="run only the local Kafka-compatible broker (Tansu)")
    broker.add_argument("--port", type=int, default=None, help="default: the SIGNALS_BROKER port")
    broker.set_defaults(handler=_cmd_broker)

    gen = sub.add_parser(
        "generate", help="synthetic enriched events (TSV) to stdout/file or a topic"
    )
    gen.add_argument("--count", type=int, default=1000, help="events to generate (0 = endless)")
    gen.add_argument("--users", type=int, default=100)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--rate", type=float, default=None, help="events/s (default: unthrottled)")
    gen.add_argument("--output", "-o", type=Path, default=None, help="TSV file (default stdout)")
    gen.add_argument(
        "--to-topic", action="store_true", help="produce to SIGNALS_INPUT_TOPIC instead of a file"
    )
    gen.set_defaults(handler=_cmd_generate)

    tail = sub.add_parser(
        "interventions", help="print interventions from SIGNALS_INTERVENTIONS_TOPIC as they arrive"
    )
    tail.add_argument(
        "--key",
        action="append",
        default=[],
        metavar="NAME=ID",
        help="only these targets, e.g. --key domain_userid=ID (repeatable)",
    )
    tail.add_argument("--from-beginning", action="store_true", help="replay the whole topic first")
    tail.set_defaults(handler=_cmd_interventions)

    api = sub.add_parser("api", help="the Signals API from the Redis profiles store (no stream)")
    api.add_argument("--host", default=None, help="bind address (default: SIGNALS_WEB_HOST)")
    api.add_argument("--port", type=int, default=None, help="default: SIGNALS_WEB_PORT")
    api.set_defaults(handler=_cmd_api)

    replay = sub.add_parser("replay", help="produce TSV or NDJSON events into the input topic")
    replay.add_argument(
        "files", nargs="+", type=Path, help="files, one event per line ('-' = stdin)"
    )
    replay.add_argument("--rate", type=float, default=None, help="events/s (default: unthrottled)")
    replay.add_argument(
        "--shift-to-now",
        action="store_true",
        help="shift all timestamps by one constant so the newest event lands at now",
    )
    replay.add_argument("--topic", default=None, help="default: SIGNALS_INPUT_TOPIC")
    replay.add_argument("--no-progress", action="store_true")
    replay.set_defaults(handler=_cmd_replay)

    sync = sub.add_parser("sync", help="warehouse groups: run one group's sync now, or status")
    sync.add_argument("action", choices=("run", "status"))
    sync.add_argument("group", nargs="?", help="group name (run)")
    sync.add_argument("--version", type=int, default=None, help="default: latest published")
    sync.set_defaults(handler=_cmd_sync)
    return parser


# --- worker ------------------------------------------------------------------------------------


def _run_worker(extra: list[str]) -> int:
    """Hand over to Faust's own CLI, with our app, uvloop and INFO logs unless overridden."""
    extra = _take_definitions_option(extra)
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        print(f"signals-stream: {exc}", file=sys.stderr)
        return 2
    # Before the app exists: Faust's own --loop option is applied too late for our CLI path.
    import mode.loop

    mode.loop.use("uvloop")
    from signals_stream.worker import default_worker

    app = default_worker().app

    _tune_gc()
    global_opts = ["--loop", "uvloop", "--datadir", str(settings.data_dir)]
    worker_opts = list(extra)
    if not any(o in ("-l", "--loglevel") or o.startswith("--loglevel=") for o in extra):
        faust_level = {"WARNING": "warn"}.get(settings.log_level, settings.log_level.lower())
        worker_opts = ["--loglevel", faust_level, *worker_opts]
    if not any(o in ("-p", "--web-port") or o.startswith("--web-port=") for o in extra):
        worker_opts = ["--web-port", str(settings.web_port), *worker_opts]
    sys.argv = ["signals-stream", *global_opts, "worker", *worker_opts]
    app.main()
    return 0


# The stream allocates and drops millions of small containers (parsed fields, projections,
# rows) and keeps few of them: with CPython's default gen-0 threshold (700 allocations) the
# collector runs every few events. bench_pipeline: its CPU halves (~3 % of the worker's).
_GC_THRESHOLDS = (50_000, 20, 100)


def _tune_gc() -> None:
    """Freeze what start-up built (modules, the app, the catalog: never garbage) so the
    collector stops walking it, and collect young objects less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*_GC_THRESHOLDS)


def _take_definitions_option(args: list[str]) -> list[str]:
    """``--definitions FILE`` is ours, not Faust's: move it into SIGNALS_DEFINITIONS."""
    rest: list[str] = []
    it = iter(args)
    for arg in it:
        if arg == "--definitions":
            os.environ["SIGNALS_DEFINITIONS"] = next(it, "")
        elif arg.startswith("--definitions="):
            os.environ["SIGNALS_DEFINITIONS"] = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    return rest


# --- api -----------------------------------------------------------------------------------------


def _cmd_api(args: argparse.Namespace, settings: Settings) -> int:
    import uvloop

    from signals_stream.apiserver import serve

    host = args.host or settings.web_host
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(settings, host, args.port or settings.web_port))
    return 0


# --- dev / broker ------------------------------------------------------------------------------


def _cmd_dev(args: argparse.Namespace, settings: Settings) -> int:
    from signals_stream.devtools.dev_stack import DevOptions, run_dev

    return asyncio.run(
        run_dev(settings, DevOptions(rate=args.rate, users=args.users, feed=not args.no_events))
    )


def _cmd_broker(args: argparse.Namespace, settings: Settings) -> int:
    from signals_stream.devtools.broker import LocalBroker

    port = args.port or int(settings.bootstrap_servers[0].rsplit(":", 1)[1])
    with LocalBroker(port=port) as broker:
        print(f"local broker listening on {broker.url} (memory only; Ctrl-C stops it)", flush=True)
        _wait_for_signal()
    return 0


def _wait_for_signal() -> None:
    stop = False

    def _stop(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    with contextlib.suppress(KeyboardInterrupt):
        while not stop:
            signal.pause()


# --- interventions ------------------------------------------------------------------------


def _cmd_interventions(args: argparse.Namespace, settings: Settings) -> int:
    targets = set()
    for item in args.key:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise ConfigurationError(f"--key expects NAME=ID, got {item!r}")
        targets.add((name, value))
    return asyncio.run(_tail(settings, targets, args.from_beginning))


async def _tail(settings: Settings, targets: set[tuple[str, str]], from_beginning: bool) -> int:
    """One JSON intervention per line on stdout (an example consumer of the output topic)."""
    import orjson

    from signals_stream.kafka.auth import client_auth
    from signals_stream.kafka.topics import tail_consumer

    consumer = tail_consumer(
        settings.bootstrap_servers,
        settings.interventions_topic,
        from_beginning=from_beginning,
        auth=client_auth(settings),
    )
    await consumer.start()
    try:
        async for message in consumer:
            instance = orjson.loads(message.value)
            target = instance.get("target_attribute_key") or {}
            if targets and (target.get("name"), target.get("id")) not in targets:
                continue
            sys.stdout.write(message.value.decode() + "\n")
            sys.stdout.flush()
    finally:
        await consumer.stop()
    return 0


# --- generate / replay -------------------------------------------------------------------------


def _cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    from signals_stream.devtools.generator import GeneratorConfig, generate_events

    # Sent to a live worker, events are stamped with the wall clock as they are produced;
    # to a file, they follow a simulated schedule starting now.
    config = GeneratorConfig(users=args.users, seed=args.seed, live=args.to_topic)
    events = generate_events(config)
    limited: Iterator = events if args.count == 0 else _take(events, args.count)
    if args.to_topic:
        records = ((ev.key, ev.line) for ev in limited)
        summary = asyncio.run(
            _produce(settings, settings.input_topic, records, args.rate, args.count or None)
        )
        print(summary.describe(), file=sys.stderr)
        return 0 if summary.failed == 0 else 1
    out = sys.stdout.buffer if args.output is None else args.output.open("wb")
    try:
        for ev in limited:
            out.write(ev.line + b"\n")
    except BrokenPipeError:
        return 0
    finally:
        if args.output is not None:
            out.close()
    return 0


def _cmd_sync(args: argparse.Namespace, settings: Settings) -> int:
    import orjson
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from signals_stream.sync.oneshot import run_now, statuses

    if args.action == "status":
        found = asyncio.run(statuses(settings))
        print(orjson.dumps({g: s.to_json() for g, s in found.items()}).decode())
        return 0
    if not args.group:
        raise ConfigurationError("sync run: name the group")
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed} rows"),
        TimeElapsedColumn(),
    ) as bar:  # fmt: skip
        task = bar.add_task(f"syncing {args.group}", total=None)
        status = asyncio.run(
            run_now(settings, args.group, args.version, lambda n: bar.update(task, completed=n))
        )
    print(orjson.dumps(status.to_json()).decode())
    return 1 if status.last_error else 0


def _cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    import time

    from signals_stream.devtools.replay import iter_records, newest_event_time_ms, shift_record

    topic = args.topic or settings.input_topic
    total: int | None = None
    delta_ms = 0
    if args.shift_to_now or not any(str(p) == "-" for p in args.files):
        if any(str(p) == "-" for p in args.files):
            raise ConfigurationError("--shift-to-now needs files, not stdin (it reads them twice)")
        total = sum(1 for _ in iter_records(args.files))
    if args.shift_to_now:
        newest = newest_event_time_ms(iter_records(args.files))
        delta_ms = 0 if newest is None else int(time.time() * 1000) - newest
    records = iter_records(args.files)
    if delta_ms:
        records = (shift_record(r, delta_ms) for r in records)
    summary = asyncio.run(
        _produce(
            settings, topic, ((None, r) for r in records), args.rate, total, not args.no_progress
        )
    )
    print(summary.describe(), file=sys.stderr)
    return 0 if summary.failed == 0 else 1


async def _produce(
    settings: Settings,
    topic: str,
    records: Iterator[tuple[bytes | None, bytes]],
    rate: float | None,
    total: int | None,
    progress: bool = True,
) -> ProduceSummary:
    from signals_stream.devtools.produce import produce_records
    from signals_stream.kafka.auth import client_auth
    from signals_stream.kafka.topics import TopicSpec, ensure_topics

    auth = client_auth(settings)
    spec = TopicSpec(
        topic, settings.partitions, replication_factor=settings.topic_replication_factor
    )
    await ensure_topics(settings.bootstrap_servers, [spec], auth=auth)
    return await produce_records(
        settings.bootstrap_servers,
        topic,
        records,
        rate=rate,
        progress=progress,
        total=total,
        auth=auth,
    )


def _take(it: Iterator, n: int) -> Iterator:
    for i, item in enumerate(it):
        if i >= n:
            return
        yield item


if __name__ == "__main__":
    sys.exit(main())
