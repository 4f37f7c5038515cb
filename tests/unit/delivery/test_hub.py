"""The local subscriber hub: targeted delivery, bounded streams, slow clients dropped."""

from __future__ import annotations

import pytest

from signals_stream.delivery.hub import Hub, TooManySubscribers


def _instance(key: str, entity_id: str, n: int = 0) -> dict:
    return {"intervention_id": str(n), "target_attribute_key": {"name": key, "id": entity_id}}


async def test_an_instance_reaches_only_subscribers_of_its_target() -> None:
    hub = Hub()
    alice = hub.subscribe([("domain_userid", "a")])
    both = hub.subscribe([("domain_userid", "a"), ("domain_sessionid", "s")])
    bob = hub.subscribe([("domain_userid", "b")])
    assert hub.publish(_instance("domain_userid", "a")) == 2
    assert hub.publish(_instance("domain_sessionid", "s")) == 1
    assert alice.queue.qsize() == 1 and both.queue.qsize() == 2 and bob.queue.empty()


async def test_a_slow_subscriber_is_dropped_instead_of_blocking() -> None:
    hub = Hub(queue_size=3)
    slow = hub.subscribe([("domain_userid", "a")])
    delivered = [hub.publish(_instance("domain_userid", "a", n)) for n in range(5)]
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
