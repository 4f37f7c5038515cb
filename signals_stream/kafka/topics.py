"""Create the topics signals-stream reads and writes, idempotently, through the Kafka admin API.

Topics are listed before anything names them: a metadata request that names a missing topic
makes brokers with ``auto.create.topics.enable`` (Apache Kafka's default, and Tansu always)
create it on the spot with the broker's default partition count.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from signals_stream.errors import ConfigurationError

__all__ = ["TopicSpec", "ensure_topics", "tail_consumer", "topic_partitions"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic to create.

    Args:
        name: topic name.
        partitions: partition count (its maximum parallelism; co-partitioned topics must match).
        compacted: keep the latest record per key (``cleanup.policy=compact``), for changelogs.
        config: extra topic configs, e.g. ``{"retention.ms": "86400000"}``; they win over
            ``compacted``.
        replication_factor: copies of each partition (1 on a single broker).
    """

    name: str
    partitions: int
    compacted: bool = False
    config: dict[str, str] = field(default_factory=dict)
    replication_factor: int = 1

    def configs(self) -> dict[str, str]:
        """The topic configs sent with the create request."""
        base = {"cleanup.policy": "compact"} if self.compacted else {}
        return base | {key: str(value) for key, value in self.config.items()}


@contextlib.asynccontextmanager
async def _admin(
    bootstrap: list[str], auth: Mapping[str, Any] | None
) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="signals-stream-admin", **(auth or {})
    )
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def _partition_counts(admin: AIOKafkaAdminClient, topics: list[str]) -> dict[str, int]:
    if not topics:
        return {}
    counts: dict[str, int] = {}
    for entry in await admin.describe_topics(topics):
        if not entry.get("error_code"):
            counts[entry["topic"]] = len(entry.get("partitions", ()))
    return counts


async def ensure_topics(
    bootstrap: list[str],
    specs: Sequence[TopicSpec],
    *,
    auth: Mapping[str, Any] | None = None,
) -> dict[str, int]:
    """Create the topics of ``specs`` that do not exist yet; leave existing ones as they are.

    Safe to run concurrently with another process doing the same. An existing topic with a
    different partition count is logged as a warning, not changed: it breaks co-partitioning
    only for topics that feed tables, and repartitioning a topic is an operator's decision.

    Args:
        bootstrap: ``host:port`` servers.
        specs: the wanted topics.
        auth: security keyword arguments (:func:`signals_stream.kafka.auth.client_auth`).

    Returns:
        The actual partition count of every topic in ``specs``.

    Raises:
        ConfigurationError: the broker refused to create a topic (the message says why).
    """
    async with _admin(bootstrap, auth) as admin:
        existing = set(await admin.list_topics())
        missing = [spec for spec in specs if spec.name not in existing]
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(
                        name=spec.name,
                        num_partitions=spec.partitions,
                        replication_factor=spec.replication_factor,
                        topic_configs=spec.configs(),
                    )
                    for spec in missing
                ]
            )
            # aiokafka returns per-topic error codes rather than raising them.
            for topic, code, *rest in response.topic_errors:
                if code == TopicAlreadyExistsError.errno:
                    logger.debug("topic %s was created concurrently", topic)
                elif code:
                    reason = rest[0] if rest and rest[0] else for_code(code).__name__
                    raise ConfigurationError(f"cannot create topic {topic!r}: {reason}")
                else:
                    logger.info("created topic %s", topic)
        counts = await _partition_counts(admin, [spec.name for spec in specs])
    for spec in specs:
        actual = counts.get(spec.name)
        if actual is not None and actual != spec.partitions:
            logger.warning(
                "topic %s has %d partitions, not the %d asked for; left as it is",
                spec.name,
                actual,
                spec.partitions,
            )
    return counts


async def topic_partitions(
    bootstrap: list[str], topic: str, *, auth: Mapping[str, Any] | None = None
) -> int | None:
    """Partition count of ``topic``, or None when it does not exist (without creating it).

    Raises:
        aiokafka.errors.KafkaError: the broker cannot be reached.
    """
    async with _admin(bootstrap, auth) as admin:
        if topic not in set(await admin.list_topics()):
            return None
        return (await _partition_counts(admin, [topic])).get(topic)


def tail_consumer(
    bootstrap: list[str],
    topic: str,
    *,
    from_beginning: bool = False,
    fetch_max_wait_ms: int = 500,
    auth: Mapping[str, Any] | None = None,
) -> AIOKafkaConsumer:
    """A consumer of every partition of ``topic`` outside any group: each reader (every
    worker's SSE feed, a CLI) sees every record. Not started."""
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        fetch_max_wait_ms=fetch_max_wait_ms,
        **(auth or {}),
    )
