"""Run the collector: an aiohttp site whose events go to Kafka through one aiokafka producer.

``signals-stream collector`` (``demo.stack_web.serve_collector``) and ``signals-stream dev`` build
the app with :func:`collector_app`, adding the demo shop and the console to it when asked.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from aiokafka import AIOKafkaProducer

from signals_stream.collector.server import CollectorStats, Send, add_collector_routes
from signals_stream.settings import Settings

__all__ = ["collector_app", "kafka_sender", "start_site"]


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
