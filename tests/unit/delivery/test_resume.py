"""SSE positions: written and read back, anything else ignored."""

from __future__ import annotations

import pytest

from signals_stream.delivery.resume import format_position, parse_position


def test_a_position_round_trips_sorted_by_partition() -> None:
    text = format_position({3: 204, 0: 17})
    assert text == "0:17,3:204"
    assert parse_position(text) == {0: 17, 3: 204}


@pytest.mark.parametrize(
    "text", ["", "abc", "0:1,0:2", "1:-4", "0:1;2:3", "0:" + "9" * 30, "1:2," * 2000]
)
def test_ids_we_did_not_write_are_ignored(text: str) -> None:
    assert parse_position(text) is None
