"""The mirror as a worker builds it: TTLs from the installed catalog."""

from __future__ import annotations

from functools import partial

from signals_stream.engine.expiry import row_expires_at_ms
from signals_stream.engine.installed import LiveCatalog
from signals_stream.engine.row import decode_row
from signals_stream.errors import StateError
from signals_stream.profiles.connection import connect
from signals_stream.profiles.keys import RedisLayout
from signals_stream.profiles.mirror import MIB, RowMirror
from signals_stream.routing import split_row_key
from signals_stream.settings import Settings

__all__ = ["row_expiry", "worker_mirror"]


def row_expiry(live: LiveCatalog, row_key: bytes, value: bytes) -> int | None:
    """When the row's copy may go: the instant the table's sweep would delete the row (the
    catalog installed now). Decoded in the mirror's task, not on the stream's path."""
    try:
        row = decode_row(value)
    except StateError:
        return None
    key_name, _ = split_row_key(row_key)
    catalog = live.catalog
    return row_expires_at_ms(row, catalog.programs.get(key_name), catalog.synced_ttls)


def worker_mirror(settings: Settings, live: LiveCatalog) -> RowMirror | None:
    """The worker's mirror, or None without ``SIGNALS_REDIS_URL``."""
    if settings.redis_url is None:
        return None
    return RowMirror(
        connect(settings.redis_url),
        RedisLayout(settings.app_id),
        expires_at=partial(row_expiry, live),
        max_pending_bytes=settings.redis_max_pending_mb * MIB,
    )
