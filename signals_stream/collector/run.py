"""Run the collector: an aiohttp site whose events go to Kafka through one aiokafka producer.

``signals-stream collector`` runs :func:`serve_collector` alone; ``signals-stream dev`` builds the
same app with :func:`collector_app` and adds the demo shop and the console to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web
from aiokafka import AIOKafkaProducer

from signals_stream.collector.server import CollectorStats, Send, add_collector_routes
from signals_stream.settings import Settings

__all__ = ["collector_app", "kafka_sender", "serve_collector"]


@contextlib.asynccontextmanager
async def kafka_sender(bootstrap: list[str], auth: dict[str, Any]) -> AsyncIterator[Send]:
    """A started producer as a :data:`Send`; stopped (flushed) on exit."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=1, acks="all", **auth)
    await producer.start()

    async def send(topic: str, key: bytes | None, value: bytes) -> None:
        await (await producer.send(topic, value, key=key))

    try:
        yield send
    finally:
        await producer.stop()


def collector_app(settings: Settings, send: Send, stats: CollectorStats) -> web.Application:
    app = web.Application(client_max_size=2 * 1024 * 1024)
    add_collector_routes(
        app,
        send,
        input_topic=settings.input_topic,
        bad_topic=settings.bad_events_topic,
        stats=stats,
    )
    return app


async def start_site(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def serve_collector(
    settings: Settings,
    host: str,
    port: int,
    *,
    demo: bool = False,
    on_ready: Callable[[str], None] = print,
) -> int:
    """Serve until SIGINT/SIGTERM (with ``demo``, the shop and the console too)."""
    from signals_stream.demo.stack_web import serve_stack_web
    from signals_stream.kafka.auth import client_auth
    from signals_stream.kafka.topics import TopicSpec, ensure_topics

    await ensure_topics(
        settings.bootstrap_servers,
        [
            TopicSpec(settings.input_topic, settings.partitions),
            TopicSpec(settings.bad_events_topic, settings.partitions),
        ],
        auth=client_auth(settings),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with serve_stack_web(settings, host, port, demo=demo, say=on_ready):
        base = f"http://{host}:{port}"
        on_ready(f"collector listening on {base} -> {settings.input_topic}")
        if demo:
            on_ready(f"demo shop {base}/demo/   console {base}/console/")
        await stop.wait()
    return 0
