"""Whether the input log holds a backfill's start: the publish response names the earliest
available time when it does not (``kafka/log_window.log_earliest_ms``)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from aiokafka.errors import KafkaError

from signals_stream.errors import LogUnavailable
from signals_stream.kafka.auth import client_auth
from signals_stream.kafka.log_window import log_earliest_ms
from signals_stream.kafka.topics import topic_partitions
from signals_stream.settings import Settings

__all__ = ["EARLIEST_FIELD", "with_log_start"]

logger = logging.getLogger(__name__)

EARLIEST_FIELD = "backfill_earliest_available_tstamp"


async def earliest_available_ms(settings: Settings, since_ms: int) -> int | None:
    """The time from which the input topic holds every partition's records when that is
    after ``since_ms``; None when the log holds the start or cannot be asked (logged)."""
    auth = client_auth(settings)
    try:
        partitions = await topic_partitions(
            settings.bootstrap_servers, settings.input_topic, auth=auth
        )
        if not partitions:
            return None
        return await log_earliest_ms(
            settings.bootstrap_servers, settings.input_topic, partitions, since_ms, auth=auth
        )
    except (KafkaError, LogUnavailable) as exc:
        logger.warning("backfill start: cannot look up the input log's start: %r", exc)
        return None


async def with_log_start(settings: Settings, model: Any, published: bool, body: Any) -> Any:
    """``body`` (a registry write's answer) plus :data:`EARLIEST_FIELD` (ISO 8601) when
    ``model`` is a published stream group whose ``backfill_since_tstamp`` the log no longer
    (or never) held."""
    since = getattr(model, "backfill_since_tstamp", None)
    if not published or since is None or getattr(model, "kind", None) != "stream":
        return body
    earliest = await earliest_available_ms(settings, int(since.timestamp() * 1000))
    if earliest is None or not isinstance(body, dict):
        return body
    at = datetime.fromtimestamp(earliest // 1000, tz=UTC).replace(
        microsecond=earliest % 1000 * 1000
    )
    stamp = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {**body, EARLIEST_FIELD: stamp}
