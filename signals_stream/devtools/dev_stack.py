"""``signals-stream dev``: the embedded stack a newcomer runs first (glue).

Starts a local Kafka-compatible broker when none answers at ``SIGNALS_BROKER``, creates the
topics, starts one worker (a child process, its own session so it outlives nothing), feeds it
live generated events, prints the URLs to open, and on Ctrl-C stops everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import yaml

from signals_stream.errors import SignalsStreamError
from signals_stream.settings import Settings

__all__ = ["DevOptions", "merged_examples", "run_dev"]

WORKER_START_TIMEOUT_S = 90.0
EXAMPLE_DEFINITIONS = Path(__file__).parents[1] / "examples" / "ecommerce.yaml"
# The demo shop's scenarios, published with the examples.
DEMO_DEFINITIONS = Path(__file__).parents[1] / "examples" / "demo_shop.yaml"
WORKER_STOP_GRACE_S = 15.0


@dataclass(frozen=True, slots=True)
class DevOptions:
    rate: float = 20.0
    users: int = 50
    feed: bool = True
    web_host: str = "127.0.0.1"
    web_port: int = 9090  # the collector, the demo shop and the console
    demo: bool = True


async def run_dev(settings: Settings, options: DevOptions) -> int:
    from signals_stream.demo.stack_web import serve_stack_web
    from signals_stream.devtools.broker import LocalBroker, broker_answers
    from signals_stream.kafka.topics import TopicSpec, ensure_topics

    broker: LocalBroker | None = None
    definitions: str | None = None
    temp_dir: str | None = None
    worker: subprocess.Popen[bytes] | None = None
    feeder: asyncio.Task[object] | None = None
    web: contextlib.AsyncExitStack | None = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        bootstrap = settings.bootstrap_servers
        broker_url = settings.broker
        data_dir = settings.data_dir
        if not await broker_answers(bootstrap, timeout_s=2.0):
            port = int(bootstrap[0].rsplit(":", 1)[1])
            _say(f"no broker answers at {bootstrap[0]}: starting the local one (memory only)")
            broker = LocalBroker(port=port)
            await broker.astart()
            bootstrap, broker_url = [broker.bootstrap], broker.url
            # The local broker forgets everything when it stops, so state must start empty too:
            # offsets stored in old rows would otherwise skip the new broker's records.
            temp_dir = tempfile.mkdtemp(prefix="signals-stream-dev-")
            data_dir = Path(temp_dir)
        await ensure_topics(
            bootstrap,
            [
                TopicSpec(settings.input_topic, settings.partitions),
                TopicSpec(settings.bad_events_topic, settings.partitions),
                TopicSpec(settings.interventions_topic, settings.partitions),
            ],
        )
        definitions = os.environ.get("SIGNALS_DEFINITIONS")
        if not definitions:
            examples_dir = tempfile.mkdtemp(prefix="signals-stream-examples-")
            definitions = str(merged_examples(Path(examples_dir)))
        # The API always needs a token; a dev stack without one gets a fresh random one.
        token = (
            settings.api_token.get_secret_value()
            if settings.api_token is not None
            else secrets.token_urlsafe(24)
        )
        env = {
            **os.environ,
            "SIGNALS_API_TOKEN": token,
            "SIGNALS_DEFINITIONS": definitions,
            "SIGNALS_BROKER": broker_url,
            "SIGNALS_DATA_DIR": str(data_dir),
            # One local worker: no need to wait a minute for group members that never come.
            "SIGNALS_BROKER_SESSION_TIMEOUT_S": os.environ.get(
                "SIGNALS_BROKER_SESSION_TIMEOUT_S", "6"
            ),
            "SIGNALS_BROKER_REBALANCE_TIMEOUT_S": os.environ.get(
                "SIGNALS_BROKER_REBALANCE_TIMEOUT_S", "6"
            ),
        }
        worker = subprocess.Popen(
            [sys.executable, "-m", "signals_stream.cli", "worker"], env=env, start_new_session=True
        )
        await _wait_healthy(settings.web_url, worker, stop)
        web = contextlib.AsyncExitStack()
        await web.enter_async_context(
            serve_stack_web(
                settings,
                options.web_host,
                options.web_port,
                demo=options.demo,
                bootstrap=bootstrap,
                token=token,
                say=_say,
            )
        )
        sample_user = None
        if options.feed:
            feeder, sample_user = _start_feeder(settings, bootstrap, options)
        _print_urls(settings, broker_url, sample_user, token, options)
        waiter = asyncio.create_task(stop.wait())
        while not stop.is_set():
            if worker.poll() is not None:
                raise SignalsStreamError(f"the worker exited with status {worker.returncode}")
            if feeder is not None and feeder.done():
                feeder.result()  # surface a feeder failure
            await asyncio.wait([waiter], timeout=1.0)
        _say("stopping...")
        return 0
    finally:
        if feeder is not None:
            feeder.cancel()
            with contextlib.suppress(BaseException):
                await feeder
        if web is not None:
            await web.aclose()
        if not os.environ.get("SIGNALS_DEFINITIONS") and definitions:
            shutil.rmtree(Path(definitions).parent, ignore_errors=True)
        if worker is not None:
            _stop_process(worker)
        if broker is not None:
            broker.stop()
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def _wait_healthy(web_url: str, worker: subprocess.Popen[bytes], stop: asyncio.Event) -> None:
    deadline = time.monotonic() + WORKER_START_TIMEOUT_S
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while time.monotonic() < deadline and not stop.is_set():
            if worker.poll() is not None:
                raise SignalsStreamError(f"the worker exited with status {worker.returncode}")
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with session.get(f"{web_url}/healthz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.5)
    if not stop.is_set():
        raise SignalsStreamError(
            f"the worker did not become healthy within {WORKER_START_TIMEOUT_S:.0f}s"
        )


def _start_feeder(
    settings: Settings, bootstrap: list[str], options: DevOptions
) -> tuple[asyncio.Task[object], str]:
    from signals_stream.devtools.generator import GeneratorConfig, generate_events
    from signals_stream.devtools.produce import produce_records

    events = generate_events(GeneratorConfig(users=options.users, seed=int(time.time()), live=True))
    first = next(events)

    def records() -> Iterator[tuple[bytes, bytes]]:
        yield first.key, first.line
        for ev in events:
            yield ev.key, ev.line

    task = asyncio.create_task(
        produce_records(
            bootstrap,
            settings.input_topic,
            records(),
            rate=options.rate,
            progress=False,
            total=None,
        )
    )
    return task, first.domain_userid


def merged_examples(directory: Path) -> Path:
    """The example definitions and the demo shop's, as one definitions file."""
    merged: dict[str, list[object]] = {}
    for path in (EXAMPLE_DEFINITIONS, DEMO_DEFINITIONS):
        for kind, items in (yaml.safe_load(path.read_text()) or {}).items():
            merged.setdefault(kind, []).extend(items)
    target = directory / "definitions.yaml"
    target.write_text(yaml.safe_dump(merged, sort_keys=False))
    return target


def _print_urls(
    settings: Settings, broker_url: str, sample_user: str | None, token: str, options: DevOptions
) -> None:
    web = settings.web_url
    auth = f'-H "Authorization: Bearer {token}"'
    site = f"http://{options.web_host}:{options.web_port}"
    lines = [""]
    if options.demo:
        lines += [
            f"  demo shop       {site}/demo/",
            f"  console         {site}/console/?token={token}",
        ]
    lines += [
        "",
        "signals-stream is running (Ctrl-C stops everything it started)",
        f"  collector       {site}/com.snowplowanalytics.snowplow/tp2   (tracker protocol)",
        f"  broker          {broker_url}",
        f"  input topic     {settings.input_topic}   bad events: {settings.bad_events_topic}",
        f"  health          {web}/healthz",
        f"  API token       {token}",
        f"  API docs        {web}/docs/",
        f"  Python SDK      SignalsSandbox(api_url='{web}', sandbox_token='{token}')",
    ]
    if sample_user:
        lines += [
            f"  a live user     curl {auth} {web}/tables/ecommerce_user/{sample_user}",
            f"  its entity row  curl {auth} {web}/entities/domain_userid/{sample_user}",
            f"  interventions   curl -N '{web}/api/v1/interventions?domain_userid={sample_user}'",
        ]
    lines.append("")
    _say("\n".join(lines))


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=WORKER_STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
