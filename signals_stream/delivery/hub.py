"""Local subscribers to interventions: bounded, and never allowed to slow the publisher.

Every worker tails the interventions topic and publishes each record here; the SSE view
subscribes one queue per open stream. A subscriber whose queue is full is dropped (its stream
ends and the client reconnects), so a slow client can never stall the stream or the tail.

The hub also knows how far the tail has read each partition (``positions``) and holds the
recent records (``delivery/recent.py``): a stream subscribes, notes the positions at that
instant, and is sent what it missed below them from ``recent``; everything from them on reaches
its queue. Subscribing and noting happen with no ``await`` between, so nothing falls in between.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from signals_stream.delivery.recent import RecentInterventions, Recorded
from signals_stream.errors import Unavailable

__all__ = ["Hub", "Subscription", "TooManySubscribers"]

Target = tuple[str, str]


class TooManySubscribers(Unavailable):
    """The hub is at its subscriber limit, or closed (the worker is stopping): 503."""


@dataclass(eq=False)
class Subscription:
    """One open stream: its targets, its bounded queue (None: the stream must end) and the
    tail's positions when it subscribed (records from there on reach the queue)."""

    targets: frozenset[Target]
    queue: asyncio.Queue[Recorded | None] = field(repr=False)
    start: dict[int, int] = field(default_factory=dict)
    dropped: bool = False


class Hub:
    def __init__(
        self,
        *,
        max_subscribers: int = 1000,
        queue_size: int = 100,
        recent: RecentInterventions | None = None,
    ) -> None:
        self.max_subscribers = max_subscribers
        self.queue_size = queue_size
        self.recent = (
            RecentInterventions(lookback_ms=0, max_entries=0) if recent is None else recent
        )
        self.positions: dict[int, int] = {}  # partition -> next offset the tail will read
        self.partitions = 0  # of the interventions topic, once the tail has started
        self.ready = asyncio.Event()  # the tail has read the look-back and is live
        self._live_from: dict[int, int] = {}
        self._by_target: dict[Target, set[Subscription]] = {}
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
        subscription = Subscription(
            frozenset(targets), asyncio.Queue(self.queue_size), dict(self.positions)
        )
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

    def begin(
        self, partitions: int, start: Mapping[int, int], live_from: Mapping[int, int]
    ) -> None:
        """The tail reads each partition from ``start``; records before ``live_from`` (its end
        when the worker started) are history: held in ``recent``, sent to no live stream."""
        self.partitions = partitions
        self.positions = dict(start)
        self._live_from = dict(live_from)
        self.recent.start(start)
        self._check_ready()

    def publish(self, target: Target, record: Recorded, now_ms: int) -> int:
        """Hand ``record`` (an instance for ``target``) to every subscriber of its target;
        returns how many got it."""
        self.positions[record.partition] = record.offset + 1
        self.recent.add(target, record, now_ms)
        if record.offset < self._live_from.get(record.partition, 0):
            self._check_ready()
            return 0
        delivered = 0
        for subscription in list(self._by_target.get(target, ())):
            try:
                subscription.queue.put_nowait(record)
                delivered += 1
            except asyncio.QueueFull:
                self._drop(subscription)
        return delivered

    def skip(self, partition: int, offset: int) -> None:
        """The tail read a record no stream can use (unreadable): it is past it all the same."""
        self.positions[partition] = offset + 1
        self._check_ready()

    def _check_ready(self) -> None:
        if not self.ready.is_set() and all(
            self.positions.get(partition, 0) >= end for partition, end in self._live_from.items()
        ):
            self.ready.set()

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
