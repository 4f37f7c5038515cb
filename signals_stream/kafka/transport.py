"""Faust's aiokafka transport with the consumer's fetch long-poll made configurable (glue).

Faust hard-codes ``fetch_max_wait_ms=1500``. A broker that does not answer a long-poll as soon
as data arrives (the local Tansu broker, seen here) then adds up to 1.5 s per hop, and an event
crosses two hops (input, entity events) before it is visible. ``SIGNALS_CONSUMER_FETCH_MAX_WAIT_MS``
bounds that; on Apache Kafka the long-poll returns early anyway and the setting only changes how
often an idle consumer asks.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as driver
from faust.types import TransportT

__all__ = ["SignalsApp"]


class _ConsumerThread(driver.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Read by aiokafka when the consumer starts and builds its fetcher.
        wait_ms = self.app.fetch_max_wait_ms  # type: ignore[attr-defined]
        consumer._fetch_max_wait_ms = wait_ms  # noqa: SLF001 - no public knob in Faust
        return consumer


class _Consumer(driver.Consumer):
    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(driver.Transport):
    Consumer = _Consumer


class SignalsApp(faust.App):
    """``faust.App`` whose consumer long-polls at most ``fetch_max_wait_ms``."""

    def __init__(self, *args: Any, fetch_max_wait_ms: int = 1500, **kwargs: Any) -> None:
        self.fetch_max_wait_ms = fetch_max_wait_ms
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> TransportT:
        return _Transport(self.conf.broker_consumer, self)
