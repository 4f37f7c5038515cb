"""Write Faust tables from a batch of events.

A Faust table picks the RocksDB partition and the changelog partition of a read or write from
the stream's *current event*. Inside ``stream.take_events`` that is not the event a row belongs
to, which is why Faust warns against table writes in batches (faust#497). Setting the current
event explicitly for each row makes batched reads and writes land on the right partition.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from faust.streams import _current_event
from faust.types import EventT

__all__ = ["as_current_event"]


@contextmanager
def as_current_event(event: EventT) -> Iterator[None]:
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)
