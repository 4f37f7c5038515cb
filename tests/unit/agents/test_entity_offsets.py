"""The entity stage applies each entity-events partition in offset order, without holes."""

from __future__ import annotations

from agents.entity_offsets import Admission, OffsetSequence

APPLY, HOLD = Admission.APPLY, Admission.HOLD


def test_in_order_records_apply_and_replays_pass() -> None:
    sequence = OffsetSequence()
    assert [sequence.admit(1, 0, offset) for offset in (5, 6, 7)] == [APPLY] * 3
    assert sequence.next(0) == 8
    assert sequence.admit(1, 0, 6) is APPLY  # a replay: rows skip what they applied
    assert sequence.next(0) == 8


def test_a_record_past_a_hole_is_held_and_the_partition_sought_back_once() -> None:
    # The case seen on the embedded broker: 0-157 applied, 158 never delivered, 159 on.
    sequence = OffsetSequence()
    for offset in range(158):
        assert sequence.admit(1, 2, offset) is APPLY
    assert sequence.admit(1, 2, 159) is HOLD
    assert sequence.seek_to(2) == 158
    assert sequence.admit(1, 2, 160) is HOLD
    assert sequence.seek_to(2) is None  # the seek is under way: not asked again
    # After the seek: 158 comes, then 159 again, in order.
    assert [sequence.admit(1, 2, offset) for offset in (158, 159, 160)] == [APPLY] * 3
    assert sequence.next(2) == 161
    assert sequence.admit(1, 2, 163) is HOLD  # a second hole is sought again
    assert sequence.seek_to(2) == 161


def test_partitions_are_independent() -> None:
    sequence = OffsetSequence()
    assert sequence.admit(1, 0, 10) is APPLY
    assert sequence.admit(1, 1, 40) is APPLY
    assert sequence.admit(1, 0, 12) is HOLD
    assert sequence.admit(1, 1, 41) is APPLY


def test_the_first_record_is_expected_at_the_committed_offset() -> None:
    sequence = OffsetSequence({0: 100}.get)
    assert sequence.admit(1, 0, 103) is HOLD  # 100-102 were skipped
    assert sequence.seek_to(0) == 100
    assert sequence.admit(1, 0, 99) is APPLY  # older than the commit: a replay
    assert sequence.admit(1, 0, 100) is APPLY
    assert sequence.next(0) == 101


def test_without_a_committed_offset_the_first_record_sets_the_start() -> None:
    sequence = OffsetSequence()
    assert sequence.admit(1, 0, 4000) is APPLY  # retention may have removed the older ones
    assert sequence.next(0) == 4001


def test_a_new_generation_starts_every_partition_again() -> None:
    committed: dict[int, int] = {}
    sequence = OffsetSequence(committed.get)
    assert sequence.admit(1, 0, 50) is APPLY
    committed[0] = 20
    assert sequence.admit(2, 0, 20) is APPLY  # sought back to its commit: fine
    assert sequence.next(0) == 21
    del committed[0]
    assert sequence.admit(3, 0, 90) is APPLY  # nothing known: the first record sets it


def test_records_gone_to_retention_do_not_stall_the_partition() -> None:
    # Committed 100, but retention removed 100-119 while nobody read the partition.
    sequence = OffsetSequence({0: 100}.get)
    assert sequence.admit(1, 0, 120) is HOLD
    assert sequence.seek_to(0) == 100
    assert sequence.admit(1, 0, 121) is HOLD  # still in flight from before the seek
    # The seek lands; the read starts at 120 again: 100-119 are gone, go on from there.
    assert sequence.admit(1, 0, 120) is APPLY
    assert sequence.rebased == 1
    assert [sequence.admit(1, 0, offset) for offset in (121, 122)] == [APPLY, APPLY]


def test_a_single_held_record_read_again_after_the_seek_rebases() -> None:
    sequence = OffsetSequence({3: 40}.get)
    assert sequence.admit(1, 3, 50) is HOLD
    assert sequence.seek_to(3) == 40
    assert sequence.admit(1, 3, 50) is APPLY  # 40-49 do not exist
    assert sequence.next(3) == 51


def test_a_hole_that_is_read_again_does_not_rebase() -> None:
    sequence = OffsetSequence()
    for offset in range(10):
        sequence.admit(1, 0, offset)
    assert sequence.admit(1, 0, 11) is HOLD
    assert sequence.seek_to(0) == 10
    assert sequence.admit(1, 0, 12) is HOLD
    assert [sequence.admit(1, 0, offset) for offset in (10, 11, 12)] == [APPLY] * 3
    assert sequence.rebased == 0
