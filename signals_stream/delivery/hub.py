"""Local subscribers to interventions: bounded, and never allowed to slow the publisher.

Every worker tails the interventions topic and publishes each instance here; the SSE view
subscribes one queue per open stream. A subscriber whose queue is full is dropped (its stream
ends and the client reconnects), so a slow client can never stall the stream or the tail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from signals_stream.errors import Unavailable

__all__ = ["Hub", "Subscription", "TooManySubscribers"]


class TooManySubscribers(Unavailable):
    """The hub is at its subscriber limit, or closed (the worker is stopping): 503."""


@dataclass(eq=False)
class Subscription:
    """One open stream: the targets it listens to and its bounded queue."""

    targets: frozenset[tuple[str, str]]
    queue: asyncio.Queue[dict[str, Any] | None] = field(repr=False)
    dropped: bool = False


class Hub:
    def __init__(self, *, max_subscribers: int = 1000, queue_size: int = 100) -> None:
        self.max_subscribers = max_subscribers
        self.queue_size = queue_size
        self._by_target: dict[tuple[str, str], set[Subscription]] = {}
        self._count = 0
        self._closed = False

    @property
    def open_streams(self) -> int:
        return self._count

    def subscribe(self, targets: Iterable[tuple[str, str]]) -> Subscription:
        """Listen to interventions for any of ``targets`` (``(key name, id)`` pairs).

        Raises:
            TooManySubscribers: the limit is reached.
        """
        if self._closed:
            raise TooManySubscribers("the worker is shutting down")
        if self._count >= self.max_subscribers:
            raise TooManySubscribers(
                f"{self._count} streams are open (limit {self.max_subscribers})"
            )
        subscription = Subscription(frozenset(targets), asyncio.Queue(self.queue_size))
        for target in subscription.targets:
            self._by_target.setdefault(target, set()).add(subscription)
        self._count += 1
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        removed = False
        for target in subscription.targets:
            subscribers = self._by_target.get(target)
            if subscribers is not None and subscription in subscribers:
                subscribers.discard(subscription)
                removed = True
                if not subscribers:
                    del self._by_target[target]
        if removed:
            self._count -= 1

    def publish(self, instance: dict[str, Any]) -> int:
        """Hand ``instance`` to every subscriber of its target; returns how many got it."""
        target = instance.get("target_attribute_key") or {}
        subscribers = self._by_target.get((str(target.get("name")), str(target.get("id"))), ())
        delivered = 0
        for subscription in list(subscribers):
            try:
                subscription.queue.put_nowait(instance)
                delivered += 1
            except asyncio.QueueFull:
                self._drop(subscription)
        return delivered

    def close(self) -> None:
        """End every stream (the worker is stopping: open streams would hold its web server
        until its shutdown timeout) and refuse new ones."""
        self._closed = True
        for subscription in {s for subs in self._by_target.values() for s in subs}:
            self._drop(subscription)

    def _drop(self, subscription: Subscription) -> None:
        subscription.dropped = True
        self.unsubscribe(subscription)
        # Wake the stream so it ends; the queue is full, so make room for the sentinel.
        while not subscription.queue.empty():
            subscription.queue.get_nowait()
        subscription.queue.put_nowait(None)
