"""Direct pushes (``POST /api/v1/interventions``), the Kafka-free part: the targets of a push,
the instances it sends, and the pushes waiting for a delivery receipt.

A push is delivered like a rule firing: one ``InterventionInstance`` per target on the
interventions topic, keyed by target id, with one server-assigned id shared by every target.
Its records carry the :data:`PUSH_HEADER` header, so a worker whose hub hands one to a live
subscriber knows to send a delivery receipt (rule firings need none).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from signals_stream.errors import BadRequest
from signals_stream.interventions.definitions import InterventionInstance
from signals_stream.interventions.evaluator import build_instance
from signals_stream.interventions.instance import InstanceDict
from signals_stream.serving.replies import Replies

__all__ = [
    "MAX_PUSH_TARGETS",
    "PUSH_HEADER",
    "DeliveryReceipts",
    "TooManyTargets",
    "push_instances",
    "push_targets",
]

PUSH_HEADER = "signals-push"
MAX_PUSH_TARGETS = 1000  # one record each; bounds what one request can make a worker send


class TooManyTargets(BadRequest, ValueError):
    """A push names more than :data:`MAX_PUSH_TARGETS` targets (400; still a ``ValueError``)."""


def push_targets(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The ``(key name, id)`` targets of a push's query, in order, without repeats or empty ids.

    Keys repeat (``?domain_sessionid=a&domain_sessionid=b``): the Python SDK sends
    ``params=dict[str, list[str]]``.

    Raises:
        TooManyTargets: more than :data:`MAX_PUSH_TARGETS`.
    """
    targets = list(dict.fromkeys((name, id_) for name, id_ in pairs if name and id_))
    if len(targets) > MAX_PUSH_TARGETS:
        raise TooManyTargets(f"{len(targets)} targets; at most {MAX_PUSH_TARGETS} per push")
    return targets


def push_instances(
    body: bytes | str, targets: Iterable[tuple[str, str]], *, intervention_id: str, now_ms: int
) -> list[InstanceDict]:
    """One ``InterventionInstance`` dict per target, shaped like a rule firing's.

    The body's ``name``, ``version`` and ``attributes`` are kept; an ``intervention_id`` or
    ``target_attribute_key`` in it is replaced, since the server assigns both.

    Raises:
        DefinitionError: the body is not a valid ``InterventionInstance`` (the message names
            the field).
    """
    pushed = InterventionInstance.parse(body)
    instances: list[InstanceDict] = [
        build_instance(
            intervention_id=intervention_id,
            name=pushed.name,
            version=pushed.version,
            target_name=name,
            target_id=id_,
            attributes=pushed.attributes or {},
            triggered_at_ms=now_ms,
        )
        for name, id_ in targets
    ]
    return instances


class DeliveryReceipts(Replies[None]):
    """The pushes of this worker waiting for a receipt, by intervention id.

    ``listening`` is set while this worker reads the receipts topic from its end: a push must
    not be sent before, or its receipt could slip past.
    """

    def __init__(self) -> None:
        super().__init__()
        self.listening = asyncio.Event()

    def deliver(self, intervention_id: str) -> bool:
        """Record a receipt. False when no push of this worker waits for it (then it belongs
        to another worker, or came too late)."""
        return self.reply(intervention_id, None)
