"""Where the lean ingest consumer starts a partition its group never committed: at the offset
the Faust ingest agent's group (``SIGNALS_APP_ID``) committed, if any, so that switching an
existing deployment from ``SIGNALS_INGEST_MODE=faust`` to ``lean`` does not read the input
again (``auto_offset_reset`` applies otherwise). The reverse switch is not covered: the Faust
group resumes from its own, older offsets, and rows skip what they already applied.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from signals_stream.kafka.auth import client_auth
from signals_stream.settings import Settings

__all__ = ["start_where_faust_left"]

logger = logging.getLogger(__name__)


async def start_where_faust_left(
    consumer: AIOKafkaConsumer, assigned: Iterable[TopicPartition], settings: Settings
) -> None:
    """Seek each of ``assigned`` without a committed offset in the consumer's group to the
    Faust group's committed offset."""
    fresh = [tp for tp in assigned if await consumer.committed(tp) is None]
    if not fresh:
        return
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, **client_auth(settings)
    )
    try:
        await admin.start()
        committed = await admin.list_consumer_group_offsets(settings.app_id, partitions=fresh)
    except KafkaError as exc:  # nothing to inherit then: auto_offset_reset applies
        logger.warning("lean ingest: cannot read group %s offsets: %s", settings.app_id, exc)
        return
    finally:
        await admin.close()
    for tp, meta in committed.items():
        if meta is not None and meta.offset >= 0:
            logger.info("lean ingest: %s starts at the Faust agent's offset %d", tp, meta.offset)
            consumer.seek(tp, meta.offset)
