"""The external sort gives back every tuple in order, across runs on disk, and cleans up."""

from __future__ import annotations

import random
from pathlib import Path

from signals_stream.history.spill import Spill


def test_runs_on_disk_merge_back_in_order_and_are_removed(tmp_path: Path) -> None:
    rng = random.Random(7)
    items = [
        (f"u{rng.randrange(50)}", rng.randrange(10**6), str(n), b"x" * (n % 5))
        for n in range(2_345)
    ]
    spill = Spill(tmp_path, run_size=100)
    for item in items:
        spill.add(item)
    assert len(list(next(tmp_path.iterdir()).iterdir())) == 23  # runs written so far
    assert list(spill.sorted()) == sorted(items)
    assert list(tmp_path.iterdir()) == []


def test_a_small_spill_stays_in_memory(tmp_path: Path) -> None:
    spill = Spill(tmp_path, run_size=100)
    for item in [(3,), (1,), (2,)]:
        spill.add(item)
    assert list(spill.sorted()) == [(1,), (2,), (3,)]
    spill.close()
    assert list(tmp_path.iterdir()) == []
