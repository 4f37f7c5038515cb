from __future__ import annotations

import copy
import random

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signals_stream.aggregations import hll


def sketch(keys: list[str] | range | map, state: hll.HllState | None = None) -> hll.HllState:
    s = hll.empty() if state is None else state
    for key in keys:
        s = hll.add_hash(s, hll.hash_key(key))
    return s


def keys(prefix: str, n: int) -> list[str]:
    return [f"{prefix}-{i}" for i in range(n)]


def test_hash_is_stable_across_processes_and_runs() -> None:
    # BLAKE2b, not hash(): a stored sketch stays valid after a restart or on another worker.
    assert hll.hash_key("a") == 4681665781835383343
    assert hll.hash_key("") != hll.hash_key("\x00")
    assert 0 <= hll.hash_key("https://example.com/" * 50) < 2**64


def test_empty_sketch() -> None:
    s = hll.empty()
    assert s == [] and hll.is_empty(s) and hll.estimate(s) == 0.0


def test_small_sets_are_nearly_exact() -> None:
    s = hll.empty()
    worst = 0
    for n, key in enumerate(keys("user", 300), start=1):
        s = hll.add_hash(s, hll.hash_key(key))
        worst = max(worst, abs(round(hll.estimate(s)) - n))
    assert worst <= 1
    assert round(hll.estimate(sketch(["only"]))) == 1


def test_duplicates_do_not_count() -> None:
    once = sketch(keys("k", 50))
    many = sketch(keys("k", 50) * 20)
    assert once == many


@pytest.mark.parametrize("n", [10_000, 100_000])
def test_error_is_within_two_percent(n: int) -> None:
    estimate = hll.estimate(sketch(keys("user", n)))
    assert abs(estimate - n) / n < 0.02


def test_sparse_state_stays_small_then_turns_dense() -> None:
    s = sketch(keys("v", 100))
    assert type(s) is list and 90 < len(s) <= 100 and s == sorted(s)  # a few collisions
    assert len(orjson.dumps(s)) < 1_000
    s = sketch(keys("v", 3_000))
    assert type(s) is str and len(s) == hll.REGISTERS
    assert len(orjson.dumps(s)) == hll.REGISTERS + 2


def test_the_sparse_limit_is_exact() -> None:
    s = hll.empty()
    i = 0
    while type(s) is list and len(s) < hll.SPARSE_MAX:
        s = hll.add_hash(s, hll.hash_key(f"x{i}"))
        i += 1
    registers = hll.registers(s)
    before = len(s)
    while type(s) is list:
        s = hll.add_hash(s, hll.hash_key(f"x{i}"))
        i += 1
    assert before == hll.SPARSE_MAX
    # Densifying keeps every register the sparse form had.
    dense = hll.registers(s)
    assert all(d >= r for d, r in zip(dense, registers, strict=True))


def test_registers_hold_rho_in_range() -> None:
    regs = hll.registers(sketch(keys("r", 5_000)))
    assert len(regs) == hll.REGISTERS
    assert 0 <= min(regs) and max(regs) <= 64 - hll.PRECISION + 1


@pytest.mark.parametrize(("na", "nb"), [(10, 20), (10, 5_000), (5_000, 10), (3_000, 4_000)])
def test_merge_equals_adding_everything(na: int, nb: int) -> None:
    a_keys, b_keys = keys("a", na), keys("b", nb) + keys("a", na // 2)
    a, b = sketch(a_keys), sketch(b_keys)
    b_before = orjson.dumps(b)
    merged = hll.merge(copy.copy(a), b)
    assert orjson.dumps(b) == b_before  # the second argument is never touched
    assert merged == sketch(a_keys + b_keys)
    assert hll.merge(copy.copy(b), a) == merged


def test_merge_of_two_sparse_sketches_can_turn_dense() -> None:
    a, b = sketch(keys("a", 1_500)), sketch(keys("b", 1_500))
    assert type(a) is list and type(b) is list
    assert type(hll.merge(a, b)) is str


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.integers(0, 400), max_size=120),
    cut=st.integers(0, 120),
    seed=st.integers(),
)
def test_merge_is_order_independent(values: list[int], cut: int, seed: int) -> None:
    ks = [str(v) for v in values]
    shuffled = ks[:]
    random.Random(seed).shuffle(shuffled)
    whole = sketch(shuffled)
    assert hll.merge(sketch(ks[:cut]), sketch(ks[cut:])) == whole == sketch(ks)


def test_state_round_trips_through_json() -> None:
    for s in (sketch(keys("j", 50)), sketch(keys("j", 5_000))):
        restored = orjson.loads(orjson.dumps(s))
        assert restored == s
        assert sketch(["more"], restored) == sketch(["more"], s)


def test_merge_all_equals_folding_merge() -> None:
    parts = [sketch(keys(f"p{i}", n)) for i, n in enumerate([0, 5, 60, 900, 2_500, 40, 3_000])]
    snapshots = copy.deepcopy(parts)
    folded: hll.HllState = hll.empty()
    for part in parts:
        folded = hll.merge(folded, part)
    for subset in (parts[:4], parts[:5], parts[4:], parts[::2], [], [parts[4]]):
        expected: hll.HllState = hll.empty()
        for part in subset:
            expected = hll.merge(expected, part)
        assert hll.merge_all(subset) == expected
    assert hll.merge_all(parts) == folded
    assert parts == snapshots


def test_dense_merge_is_the_register_wise_maximum() -> None:
    rng = random.Random(3)
    a, b = sketch(keys("a", 4_000)), sketch(keys("b", 4_000))
    assert type(a) is str and type(b) is str
    merged = hll.merge(a, b)
    assert hll.registers(merged) == [
        max(x, y) for x, y in zip(hll.registers(a), hll.registers(b), strict=True)
    ]
    # Every register value, including the largest, against every other.
    values = [chr(48 + rng.randrange(0, 52)) for _ in range(hll.REGISTERS)]
    x = "".join(values)
    y = "".join(reversed(values))
    assert hll.registers(hll.merge(x, y)) == [
        max(p, q) for p, q in zip(hll.registers(x), hll.registers(y), strict=True)
    ]
