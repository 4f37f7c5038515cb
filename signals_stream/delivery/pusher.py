"""Direct pushes across workers: send a push to the interventions topic, then wait for a
delivery receipt from whichever worker's SSE subscriber got it.

The subscriber may be connected to any worker, so the pushing worker cannot see it. Each
worker's interventions tail (``agents/interventions_tail.py``) hands pushed records to its
local subscribers and, when at least one got it, calls :meth:`Pusher.acknowledge`: a push of
this very worker is resolved in memory, any other produces a receipt (the intervention id) to
the receipts topic, which every worker tails from its end (``agents/push_receipts.py``). No
receipt within ``SIGNALS_PUSH_RECEIPT_TIMEOUT_MS`` means "undelivered".
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import orjson
from faust.types import AppT

from signals_stream.delivery.push import PUSH_HEADER, DeliveryReceipts
from signals_stream.interventions.instance import InstanceDict

__all__ = ["Pusher", "is_push"]

_PUSH_HEADERS = [(PUSH_HEADER, b"1")]


def is_push(headers: Any) -> bool:
    """Whether a record of the interventions topic is a direct push (by its headers)."""
    return any(name == PUSH_HEADER for name, _ in headers or ())


class Pusher:
    """Sends direct pushes and their delivery receipts through the app's producer."""

    def __init__(
        self,
        app: AppT,
        receipts: DeliveryReceipts,
        *,
        interventions_topic: str,
        receipts_topic: str,
        timeout_s: float,
    ) -> None:
        self._app = app
        self.receipts = receipts
        self._interventions_topic = interventions_topic
        self._receipts_topic = receipts_topic
        self._timeout_s = timeout_s

    async def push(self, instances: Sequence[InstanceDict]) -> bool:
        """Send one direct push (its instances share one intervention id, one per target) and
        wait for a receipt.

        Returns:
            True when a live subscriber on some worker received it within the timeout.

        Raises:
            faust.exceptions.ProducerSendError, KafkaError: the interventions topic cannot be
                written.
        """
        receipts = self.receipts
        with contextlib.suppress(TimeoutError):  # only right after start-up
            await asyncio.wait_for(receipts.listening.wait(), self._timeout_s)
        producer = self._app.producer
        with receipts.expecting(instances[0]["intervention_id"]) as received:
            acks = [
                await producer.send(
                    self._interventions_topic,
                    instance["target_attribute_key"]["id"].encode(),
                    orjson.dumps(instance),
                    None,
                    None,
                    _PUSH_HEADERS,
                )
                for instance in instances
            ]
            await asyncio.gather(*acks)
            try:
                await asyncio.wait_for(received, self._timeout_s)
            except TimeoutError:
                return False
        return True

    async def acknowledge(self, intervention_id: str) -> None:
        """A local subscriber got the pushed ``intervention_id``: tell the worker that pushed
        it (this one, in memory; another, through the receipts topic)."""
        if not self.receipts.deliver(intervention_id):
            key = intervention_id.encode()
            await self._app.producer.send(self._receipts_topic, key, key, None, None, None)
