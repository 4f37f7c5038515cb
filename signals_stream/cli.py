"""The ``signals-stream`` command line.

signals-stream worker [FAUST WORKER OPTIONS]   run a Faust worker
signals-stream api                             stateless Signals API over the Redis store
signals-stream dev                             embedded stack: broker + worker + live events
signals-stream broker                          run only the local Kafka-compatible broker
signals-stream generate                        synthetic enriched events, as TSV or to a topic
signals-stream replay FILE...                  produce TSV / NDJSON events into the input topic
signals-stream test GROUP_FILE                 compute a group over the recent input log (test())
signals-stream preview RULE_FILE               who a rule matches now, and its recent firings
signals-stream dataset build SPEC.yaml         a training dataset replayed from the input log
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
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
    dev.add_argument(
        "--web-port", type=int, default=9090, help="port of the collector, demo shop and console"
    )
    dev.add_argument("--no-demo", action="store_true", help="serve only the collector (no npm)")
    dev.set_defaults(handler=_cmd_dev)

    collector = sub.add_parser(
        "collector",
        help="a development collector: tracker protocol in, enriched TSV to the input topic",
    )
    collector.add_argument("--host", default="127.0.0.1", help="address to listen on")
    collector.add_argument("--port", type=int, default=9090, help="port to listen on")
    collector.add_argument(
        "--demo",
        action="store_true",
        help="also serve the demo shop (/demo/) and the console (/console/) for the worker "
        "at SIGNALS_WEB_PORT (needs npm and SIGNALS_API_TOKEN)",
    )
    collector.set_defaults(handler=_cmd_collector)

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

    delete = sub.add_parser(
        "delete-user",
        help="delete everything stored for one identifier (privacy requests), through a worker",
    )
    delete.add_argument("key", help="attribute key name, e.g. domain_userid")
    delete.add_argument("id", help="the identifier's value")
    delete.add_argument(
        "--url",
        default=None,
        help="a worker's URL (default: SIGNALS_WORKER_URL, else this machine's SIGNALS_WEB_PORT)",
    )
    delete.set_defaults(handler=_cmd_delete_user)

    mcp = sub.add_parser(
        "mcp", help="a Model Context Protocol server: Signals attributes and agentic contexts"
    )
    mcp.add_argument(
        "--url",
        default=None,
        help="the Signals API to read (default: SIGNALS_WORKER_URL, else this host's worker)",
    )
    mcp.add_argument("--http", action="store_true", help="streamable HTTP at /mcp instead of stdio")
    mcp.add_argument("--host", default="127.0.0.1", help="HTTP bind address")
    mcp.add_argument("--port", type=int, default=6070, help="HTTP port")
    mcp.set_defaults(handler=_cmd_mcp)

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

    test = sub.add_parser(
        "test", help="compute a group over the recent window of the input topic, as test() does"
    )
    test.add_argument("group_file", type=Path, help="definitions file holding the group")
    test.add_argument("--group", default=None, help="which group of the file (default: the only)")
    test.add_argument("--ids", nargs="+", default=None, help="ids (default: 10 recent ones)")
    test.add_argument("--app-id", action="append", default=None, help="only these app_ids")
    test.add_argument("--window", default="PT1H", help="ISO 8601 duration back from now")
    test.add_argument("--no-progress", action="store_true")
    test.set_defaults(handler=_cmd_test)

    preview = sub.add_parser(
        "preview", help="intervention preview: who matches a rule now, and its recent firings"
    )
    preview.add_argument("rule_file", type=Path, help="definitions file holding the rule")
    preview.add_argument("--rule", default=None, help="which rule of the file (default: the only)")
    preview.add_argument("--window", default="PT1H", help="ISO 8601 duration of log to replay")
    preview.add_argument("--sample", type=int, default=10, help="matching ids to show")
    preview.add_argument("--app-id", action="append", default=None, help="only these app_ids")
    preview.add_argument(
        "--url", default=None, help="a worker (default: SIGNALS_WORKER_URL, else this host's)"
    )
    preview.set_defaults(handler=_cmd_preview)

    sync = sub.add_parser("sync", help="warehouse groups: run one group's sync now, or status")
    sync.add_argument("action", choices=("run", "status"))
    sync.add_argument("group", nargs="?", help="group name (run)")
    sync.add_argument("--version", type=int, default=None, help="default: latest published")
    sync.set_defaults(handler=_cmd_sync)

    batch = sub.add_parser(
        "batch", help="batch groups: print a group's warehouse SQL, or compute it in the warehouse"
    )
    batch.add_argument("action", choices=("sql", "run"))
    batch.add_argument("group", help="group name")
    batch.add_argument("--version", type=int, default=None, help="default: the latest")
    batch.add_argument(
        "--definitions", type=Path, default=None,
        help="definitions file (default: SIGNALS_DEFINITIONS, else the published registry)",
    )  # fmt: skip
    _dialect_option(batch)
    batch.add_argument(
        "--events-table", default=None,
        help="[database.]schema.table of atomic events (default: SIGNALS_BATCH_EVENTS_TABLE)",
    )  # fmt: skip
    batch.add_argument(
        "--columns", type=Path, default=None,
        help="sql: file of `column type` lines of the events table (default: read them from "
        "the warehouse)",
    )  # fmt: skip
    batch.add_argument(
        "--full", action="store_true",
        help="run: recompute from every event, also for a group that runs incrementally",
    )  # fmt: skip
    batch.set_defaults(handler=_cmd_batch)

    dataset = sub.add_parser(
        "dataset",
        help="training datasets: print the SQL, build it in the warehouse, or build a file",
    )
    dataset.add_argument("action", choices=("sql", "run", "build"))
    dataset.add_argument("spec", type=Path, help="YAML DatasetBundleRequest (docs/api.md)")
    dataset.add_argument(
        "--from", dest="source", choices=("warehouse", "log"), default="warehouse",
        help="build: compiled SQL on the warehouse, or a replay of the input log",
    )  # fmt: skip
    dataset.add_argument(
        "--out", type=Path, default=None,
        help="build: the .parquet or .csv file; sql: a directory for one .sql per table",
    )  # fmt: skip
    dataset.add_argument(
        "--table", default=None,
        help="build --from log: schema.table in an --out DuckDB file, or without --out on "
             "SIGNALS_WAREHOUSE_URL (DuckDB or PostgreSQL)",
    )  # fmt: skip
    dataset.add_argument(
        "--anchors", type=Path, default=None,
        help="build --from log: user-supplied anchors from a CSV, Parquet or DuckDB file "
             "(default: the request's anchors.source table on SIGNALS_WAREHOUSE_URL)",
    )  # fmt: skip
    dataset.add_argument(
        "--since", default=None, help="build --from log: read the log from this time (ISO 8601)"
    )
    dataset.add_argument("--no-progress", action="store_true", help="build --from log: no bars")
    _dialect_option(dataset)
    dataset.set_defaults(handler=_cmd_dataset)
    backfill = sub.add_parser(
        "backfill", help="stream groups filled from the input log: status, start, cancel"
    )
    steps = backfill.add_subparsers(dest="action", required=True)
    status = steps.add_parser("status", help="every backfill task's progress")
    status.add_argument("--watch", action="store_true", help="redraw until none is running")
    start = steps.add_parser(
        "start", help="fill a published group again from a time (or over a range of the log)"
    )
    start.add_argument("group", help="a published stream group")
    start.add_argument("--since", required=True, help="ISO 8601 time, not in the future")
    start.add_argument(
        "--until",
        default=None,
        help="ISO 8601 time after --since: the log is read up to it only, the group counts "
        "that range and then live (docs/semantics.md, range backfill)",
    )
    start.add_argument("--version", type=int, default=None, help="default: the latest")
    start.add_argument("--url", default=None, help="a worker (default: SIGNALS_WORKER_URL)")
    cancel = steps.add_parser("cancel", help="stop a backfill (what it merged stays)")
    cancel.add_argument("id", help="the backfill id, as `backfill status` shows it")
    backfill.set_defaults(handler=_cmd_backfill)
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


# --- delete-user ---------------------------------------------------------------------------------


def _cmd_delete_user(args: argparse.Namespace, settings: Settings) -> int:
    import urllib.error
    import urllib.parse
    import urllib.request

    base = args.url or settings.worker_url or f"http://127.0.0.1:{settings.web_port}"
    path = "/api/v1/user-data/{}/{}".format(
        urllib.parse.quote(args.key, safe=""), urllib.parse.quote(args.id, safe="")
    )
    token = settings.api_token
    headers = {} if token is None else {"Authorization": f"Bearer {token.get_secret_value()}"}
    request = urllib.request.Request(base.rstrip("/") + path, headers=headers, method="DELETE")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace")
        print(f"signals-stream: {error.code} {detail}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"signals-stream: cannot reach the worker at {base}: {exc}", file=sys.stderr)
        return 1
    print(answer["message"])
    return 0


# --- api -----------------------------------------------------------------------------------------


def _cmd_api(args: argparse.Namespace, settings: Settings) -> int:
    import uvloop

    from signals_stream.apiserver import serve

    host = args.host or settings.web_host
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(settings, host, args.port or settings.web_port))
    return 0


def _cmd_mcp(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from signals_stream.mcp_server import build_server, require_token

    url = args.url or settings.worker_url or f"http://127.0.0.1:{settings.web_port}"
    token = settings.api_token.get_secret_value() if settings.api_token else None
    server = build_server(url, token)
    if not args.http:
        server.run("stdio")
        return 0
    app = require_token(server.streamable_http_app(), token)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


# --- dev / broker ------------------------------------------------------------------------------


def _cmd_dev(args: argparse.Namespace, settings: Settings) -> int:
    from signals_stream.devtools.dev_stack import DevOptions, run_dev

    return asyncio.run(
        run_dev(
            settings,
            DevOptions(
                rate=args.rate,
                users=args.users,
                feed=not args.no_events,
                web_port=args.web_port,
                demo=not args.no_demo,
            ),
        )
    )


def _cmd_collector(args: argparse.Namespace, settings: Settings) -> int:
    from signals_stream.demo.stack_web import serve_collector

    return asyncio.run(serve_collector(settings, args.host, args.port, demo=args.demo))


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


def _cmd_batch(args: argparse.Namespace, settings: Settings) -> int:
    from signals_stream.batch.command import find_group, print_sql, run_command

    group = find_group(settings, args.group, args.version, args.definitions)
    if args.action == "sql":
        print(
            print_sql(
                group, settings, dialect=args.dialect, events_table=args.events_table,
                columns=args.columns,
            )
        )  # fmt: skip
        return 0
    return run_command(group, settings, args.events_table, full=args.full)


def _dialect_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dialect", choices=("duckdb", "postgres", "snowflake", "bigquery"), default=None,
        help="sql: the warehouse to write SQL for (default: SIGNALS_WAREHOUSE_URL's)",
    )  # fmt: skip


def _cmd_dataset(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "build" and args.source == "log":
        from signals_stream.history.dataset_command import run_dataset_build

        return run_dataset_build(args, settings)
    from signals_stream.datasets.command import run_command

    return run_command(args, settings)


def _cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    from signals_stream.history import backfill_commands as commands

    if args.action == "status":
        return commands.show_status(settings, watch=args.watch)
    if args.action == "cancel":
        return commands.cancel_backfill(settings, args.id)
    return commands.start_backfill(
        settings, args.group, args.since, args.version, args.url, until=args.until
    )


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


def _cmd_test(args: argparse.Namespace, settings: Settings) -> int:
    import time

    from rich.console import Console

    from signals_stream.errors import DefinitionError
    from signals_stream.history.console import columns_table, read_progress
    from signals_stream.history.group_test import run_group_test
    from signals_stream.history.requests import GroupTestRequest
    from signals_stream.registry.loader import load_definitions

    loaded = load_definitions(args.group_file)
    groups = [g for g in loaded.groups if args.group in (None, g.name)]
    if len(groups) != 1:
        names = ", ".join(g.full_name for g in loaded.groups) or "none"
        raise DefinitionError(
            f"{args.group_file}: name one group with --group (the file holds: {names})"
        )
    request = GroupTestRequest.parse(
        {
            "attribute_group": groups[0].to_wire(),
            "attribute_key_ids": args.ids,
            "app_ids": args.app_id,
            "window": args.window,
        }
    )
    err = Console(stderr=True)
    with read_progress(err) if not args.no_progress else contextlib.nullcontext() as progress:
        columns = asyncio.run(
            run_group_test(
                request, settings, loaded.keys, now_ms=int(time.time() * 1000), progress=progress
            )
        )
    title = f"{groups[0].full_name} over the last {request.window} of {settings.input_topic}"
    Console().print(columns_table(title, columns))
    return 0


def _cmd_preview(args: argparse.Namespace, settings: Settings) -> int:
    import urllib.error
    import urllib.request

    import orjson
    from rich.console import Console

    from signals_stream.errors import DefinitionError
    from signals_stream.history.console import preview_table
    from signals_stream.history.requests import PreviewRequest
    from signals_stream.registry.loader import load_definitions

    loaded = load_definitions(args.rule_file, resolve=False)
    rules = [r for r in loaded.interventions if args.rule in (None, r.name)]
    if len(rules) != 1:
        names = ", ".join(r.key for r in loaded.interventions) or "none"
        raise DefinitionError(f"{args.rule_file}: name one rule with --rule (it holds: {names})")
    body = PreviewRequest.parse(
        {
            "intervention": rules[0].to_wire(),
            "window": args.window,
            "sample": args.sample,
            "app_ids": args.app_id,
        }
    ).model_dump(mode="json", exclude_none=True)
    body["intervention"] = rules[0].to_wire()
    base = args.url or settings.worker_url or settings.web_url
    token = settings.api_token.get_secret_value() if settings.api_token else ""
    request = urllib.request.Request(
        base.rstrip("/") + "/api/v1/testing/interventions/",
        data=orjson.dumps(body),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    err = Console(stderr=True)
    try:
        with (
            err.status(f"previewing {rules[0].key} on {base}"),
            urllib.request.urlopen(request, timeout=settings.history_deadline_s + 30) as answer,
        ):
            result = orjson.loads(answer.read())
    except urllib.error.HTTPError as exc:
        err.print(f"signals-stream: {base} answered {exc.code}: {exc.read().decode()[:500]}")
        return 1
    except OSError as exc:
        err.print(f"signals-stream: no worker answers at {base}: {exc}")
        return 1
    Console().print(preview_table(rules[0].key, result))
    return 0


def _take(it: Iterator, n: int) -> Iterator:
    for i, item in enumerate(it):
        if i >= n:
            return
        yield item


if __name__ == "__main__":
    sys.exit(main())
