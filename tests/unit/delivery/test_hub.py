"""The local subscriber hub: targeted delivery, bounded streams, slow clients dropped, and the
tail's positions noted at subscription."""

from __future__ import annotations

import pytest

from signals_stream.delivery.hub import Hub, TooManySubscribers
from signals_stream.delivery.recent import RecentInterventions, Recorded

NOW = 1_000_000


def _record(partition: int, offset: int) -> Recorded:
    return Recorded(partition, offset, NOW, b"{}")


async def test_a_record_reaches_only_subscribers_of_its_target() -> None:
    hub = Hub()
    alice = hub.subscribe([("domain_userid", "a")])
    both = hub.subscribe([("domain_userid", "a"), ("domain_sessionid", "s")])
    bob = hub.subscribe([("domain_userid", "b")])
    assert hub.publish(("domain_userid", "a"), _record(0, 0), NOW) == 2
    assert hub.publish(("domain_sessionid", "s"), _record(1, 0), NOW) == 1
    assert alice.queue.qsize() == 1 and both.queue.qsize() == 2 and bob.queue.empty()


async def test_a_slow_subscriber_is_dropped_instead_of_blocking() -> None:
    hub = Hub(queue_size=3)
    slow = hub.subscribe([("domain_userid", "a")])
    delivered = [hub.publish(("domain_userid", "a"), _record(0, n), NOW) for n in range(5)]
    assert delivered == [1, 1, 1, 0, 0]
    assert slow.dropped and hub.open_streams == 0
    assert await slow.queue.get() is None  # its stream is told to end


async def test_the_number_of_streams_is_bounded_and_freed_on_unsubscribe() -> None:
    hub = Hub(max_subscribers=2)
    first = hub.subscribe([("k", "1")])
    hub.subscribe([("k", "2")])
    with pytest.raises(TooManySubscribers):
        hub.subscribe([("k", "3")])
    hub.unsubscribe(first)
    hub.subscribe([("k", "3")])
    assert hub.open_streams == 2


async def test_history_is_held_for_resumes_and_reaches_no_live_stream() -> None:
    hub = Hub(recent=RecentInterventions(lookback_ms=60_000, max_entries=100))
    # Partition 0 had 2 records before the start (offsets 3, 4), partition 1 none.
    hub.begin(2, start={0: 3, 1: 7}, live_from={0: 5, 1: 7})
    assert not hub.ready.is_set()
    early = hub.subscribe([("k", "a")])
    assert hub.publish(("k", "a"), _record(0, 3), NOW) == 0
    hub.skip(0, 4)  # an unreadable record still moves the tail on
    assert hub.ready.is_set() and early.queue.empty()
    late = hub.subscribe([("k", "a")])
    assert late.start == {0: 5, 1: 7} and early.start == {0: 3, 1: 7}
    assert hub.publish(("k", "a"), _record(0, 5), NOW) == 2
    held = hub.recent.missed([("k", "a")], since={0: 0}, until={0: 5}).records
    assert [r.offset for r in held] == [3]


async def test_a_tail_with_nothing_before_its_start_is_ready_at_once() -> None:
    hub = Hub()
    hub.begin(3, start={0: 0, 1: 4, 2: 9}, live_from={0: 0, 1: 4, 2: 9})
    assert hub.ready.is_set() and hub.partitions == 3
