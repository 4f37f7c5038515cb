"""The dev stack's web site: the collector, the demo shop and the console on one port.

``signals-stream dev`` serves it beside its worker, ``signals-stream collector --demo`` beside a
worker you run; the demo page is served from the collector's own origin, so the ``sp`` cookie
is first-party.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from signals_stream.collector.run import collector_app, kafka_sender, start_site
from signals_stream.collector.server import CollectorStats
from signals_stream.errors import ConfigurationError
from signals_stream.settings import Settings

__all__ = ["serve_collector", "serve_stack_web"]


@contextlib.asynccontextmanager
async def serve_stack_web(
    settings: Settings,
    host: str,
    port: int,
    *,
    demo: bool,
    bootstrap: list[str] | None = None,
    token: str | None = None,
    say: Callable[[str], None] = print,
) -> AsyncIterator[web.Application]:
    """Serve the collector (and with ``demo`` the shop and the console) until the block ends."""
    from signals_stream.kafka.auth import client_auth

    auth = client_auth(settings)
    servers = bootstrap or settings.bootstrap_servers
    stats = CollectorStats()
    feeder: asyncio.Task[None] | None = None
    async with kafka_sender(servers, auth) as send:
        app = collector_app(settings, send, stats)
        if demo:
            from signals_stream.demo.build import build_demo
            from signals_stream.demo.console import ConsoleFeeds, add_console_routes, tail_feeds
            from signals_stream.demo.site import add_demo_routes

            if token is None:
                if settings.api_token is None:
                    raise ConfigurationError("the console needs SIGNALS_API_TOKEN")
                token = settings.api_token.get_secret_value()
            bundle = await asyncio.to_thread(build_demo, say)
            add_demo_routes(app, settings.web_url, bundle)
            feeds = ConsoleFeeds()
            add_console_routes(
                app,
                worker_url=settings.web_url,
                token=token,
                feeds=feeds,
                collector_stats=stats,
            )
            feeder = asyncio.create_task(
                tail_feeds(
                    feeds, servers, settings.interventions_topic, settings.bad_events_topic, auth
                )
            )
        runner = await start_site(app, host, port)
        try:
            yield app
        finally:
            if feeder is not None:
                feeder.cancel()
                with contextlib.suppress(BaseException):
                    await feeder
            await runner.cleanup()


async def serve_collector(
    settings: Settings,
    host: str,
    port: int,
    *,
    demo: bool = False,
    on_ready: Callable[[str], None] = print,
) -> int:
    """Serve until SIGINT/SIGTERM (with ``demo``, the shop and the console too)."""
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
