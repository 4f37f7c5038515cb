"""A ``redis.asyncio`` client that fails fast: callers own the retrying (the mirror keeps its
rows and tries again; readers fall back to the workers)."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

__all__ = ["connect"]


def connect(url: str, *, timeout_s: float = 2.0) -> aioredis.Redis:
    """A client for ``url`` (``redis://host:port/db``). No connection is made until first use.

    One immediate retry: a pooled connection broken by a Redis restart fails once, then a new
    one is opened.
    """
    return aioredis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
    )
