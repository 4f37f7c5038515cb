"""The recent-interventions buffer: bounded by age and count, asked by target and position."""

from __future__ import annotations

from signals_stream.delivery.recent import RecentInterventions, Recorded

A, B = ("k", "a"), ("k", "b")


def _buffer(**kwargs: int) -> RecentInterventions:
    buffer = RecentInterventions(
        lookback_ms=kwargs.get("lookback_ms", 60_000),
        max_entries=kwargs.get("max_entries", 100),
    )
    buffer.start({0: 0, 1: 0})
    return buffer


def test_what_a_stream_missed_is_its_targets_records_between_its_position_and_the_live_start() -> (
    None
):
    buffer = _buffer()
    for offset in range(6):
        buffer.add(A if offset % 2 == 0 else B, Recorded(0, offset, 1000 + offset, b"x"), 2000)
    missed = buffer.missed([A], since={0: 1}, until={0: 5})
    assert [r.offset for r in missed.records] == [2, 4] and missed.complete


def test_a_partition_the_client_has_no_position_for_sends_nothing() -> None:
    buffer = _buffer()
    buffer.add(A, Recorded(1, 0, 1000, b"x"), 1000)
    assert buffer.missed([A], since={0: 0}, until={0: 0, 1: 1}).records == []


def test_records_keep_offset_order_within_a_partition_even_when_timestamps_do_not() -> None:
    buffer = _buffer()
    buffer.add(A, Recorded(0, 0, 1500, b"first"), 2000)
    buffer.add(A, Recorded(0, 1, 1200, b"second"), 2000)  # another producer's clock
    buffer.add(A, Recorded(1, 0, 1300, b"other"), 2000)
    values = [r.value for r in buffer.missed([A], {0: 0, 1: 0}, {0: 2, 1: 1}).records]
    assert values.index(b"first") < values.index(b"second") and len(values) == 3


def test_the_oldest_records_go_first_and_a_position_before_them_is_incomplete() -> None:
    buffer = _buffer(max_entries=3)
    for offset in range(5):
        buffer.add(A, Recorded(0, offset, 1000, b"x"), 1000)
    assert len(buffer) == 3
    missed = buffer.missed([A], since={0: 1}, until={0: 5})
    assert [r.offset for r in missed.records] == [2, 3, 4] and not missed.complete
    assert buffer.missed([A], since={0: 2}, until={0: 5}).complete


def test_records_older_than_the_look_back_are_not_held() -> None:
    buffer = _buffer(lookback_ms=1000)
    buffer.add(A, Recorded(0, 0, 1000, b"x"), 1500)
    buffer.add(A, Recorded(0, 1, 1800, b"x"), 2500)  # the first is now 1.5 s old
    assert [r.offset for r in buffer.missed([A], {0: 0}, {0: 2}).records] == [1]
    buffer.add(A, Recorded(0, 2, 100, b"x"), 2500)  # already too old when read
    assert len(buffer) == 1 and not buffer.missed([A], {0: 1}, {0: 3}).complete


def test_without_a_look_back_no_resume_is_complete() -> None:
    buffer = _buffer(lookback_ms=0, max_entries=0)
    buffer.add(A, Recorded(0, 0, 1000, b"x"), 1000)
    missed = buffer.missed([A], {0: 0}, {0: 1})
    assert missed.records == [] and not missed.complete
