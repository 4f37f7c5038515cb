"""``signals-stream api``: the Signals read API as a stateless process, scaled apart from the
workers. It runs no Faust app (``signals_stream.app`` is never imported): definitions come from
the registry log (``kafka.registry_log``), entity rows from the Redis profiles store, and both are
evaluated with the workers' code (``server``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import aiohttp
from aiohttp import web
from yarl import URL

from signals_stream.apiserver.proxy import WorkerProxy
from signals_stream.apiserver.server import ApiServer
from signals_stream.errors import ConfigurationError
from signals_stream.kafka.registry_log import RegistryLog
from signals_stream.profiles import RedisLayout, RedisRows, connect
from signals_stream.settings import Settings

__all__ = ["serve"]

logger = logging.getLogger(__name__)


async def serve(settings: Settings, host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT.

    Raises:
        ConfigurationError: no ``SIGNALS_REDIS_URL``, or the port is taken.
    """
    if settings.redis_url is None:
        raise ConfigurationError("signals-stream api needs SIGNALS_REDIS_URL (the profiles store)")
    token = settings.api_token.get_secret_value().encode() if settings.api_token else None
    if token is None:
        logger.warning("SIGNALS_API_TOKEN is not set: every call will be refused")
    client = connect(settings.redis_url)
    tail = RegistryLog.from_settings(settings)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        proxy = WorkerProxy(settings.worker_url, session) if settings.worker_url else None
        server = ApiServer(
            tail,
            RedisRows(client, RedisLayout(settings.app_id), settings.partitions),
            token=token,
            proxy=proxy,
            settings=settings,
        )
        runner = web.AppRunner(server.application(), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigurationError(f"cannot listen on {host}:{port}: {exc}") from exc
        logger.info(
            "signals-stream api on http://%s:%d (Redis %s, fallback worker %s)",
            host,
            port,
            URL(settings.redis_url).with_user(None),  # no password in logs
            settings.worker_url or "none",
        )
        following = asyncio.create_task(tail.run(create=False), name="registry-log")
        try:
            await _until_stopped()
        finally:
            following.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await following
            await runner.cleanup()
            await server.close()
            await client.aclose()


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
