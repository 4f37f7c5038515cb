"""10^6 mutated real enriched lines through the ingest stage's per-record code, in process:
the same ``IngestBatch`` the lean consumer fills per poll (``ingest_record`` under it, which
the Faust agent runs too). No crash; every bad record is a dead letter with its reason (exact
where the mutation decides it, see tests/mutations.py), which fits in a Kafka message and keeps
the original or a flagged prefix; good records are counted and routed."""

from __future__ import annotations

import time
from collections import Counter

import orjson
import pytest

from agents.ingest_step import IngestBatch
from signals_stream.engine.installed import LiveCatalog
from signals_stream.events.dead_letters import DEFAULT_MAX_BYTES
from signals_stream.ops.stats import IngestStats
from tests.mutations import ANY, GOOD, check_letter, mutants

TOTAL = 1_000_000
POLL = 2000  # SIGNALS_BROKER_MAX_POLL_RECORDS' default


@pytest.mark.timeout(600)
def test_a_million_mutated_lines_become_good_events_or_dead_letters() -> None:
    plan = LiveCatalog().plan
    stats = IngestStats()
    expected_good = expected_bad = undecided = 0
    expected_reasons: Counter[str] = Counter()
    letters_by_kind: Counter[str] = Counter()
    truncated = routed = 0
    started = time.monotonic()
    source = mutants(TOTAL, seed=12)
    for first in range(0, TOTAL, POLL):
        batch = IngestBatch(plan, 8, stats, DEFAULT_MAX_BYTES, now_ms=1_800_000_000_000)
        poll = [next(source) for _ in range(POLL)]
        for offset, mutant in enumerate(poll, start=first):
            batch.add(mutant.value, topic="in", partition=offset % 4, offset=offset, key=b"k")
        dead = {letter.offset: letter for letter in batch.dead}
        assert len(dead) == len(batch.dead)  # one letter per bad record
        for offset, mutant in enumerate(poll, start=first):
            letter = dead.get(offset)
            if mutant.expected == GOOD:
                expected_good += 1
                assert letter is None, (mutant.kind, letter and letter.reason)
                continue
            if mutant.expected == ANY:
                undecided += 1
                if letter is None:
                    continue
            else:
                expected_bad += 1
                expected_reasons[mutant.expected] += 1
                assert letter is not None, (mutant.kind, mutant.expected)
            assert len(letter.value) <= DEFAULT_MAX_BYTES
            record = orjson.loads(letter.value)
            check_letter(record, mutant.value, mutant.expected)
            assert record["source"] == {
                "topic": "in",
                "partition": offset % 4,
                "offset": offset,
                "key": "k",
            }
            truncated += record["truncated"]
            letters_by_kind[letter.reason.split("(", 1)[0]] += 1
            if mutant.expected != ANY:
                expected_reasons[mutant.expected] -= 1
        routed += sum(len(items) for items in batch.by_partition.values())
        assert len(batch.event_times) == POLL - len(batch.dead)
    elapsed = time.monotonic() - started

    bad_total = sum(stats.bad.values())
    assert stats.good + bad_total == TOTAL
    assert dict(stats.bad) == dict(letters_by_kind)  # counted by reason = letters by reason
    assert +expected_reasons == Counter()  # every decided reason was given exactly
    assert expected_good <= stats.good <= expected_good + undecided
    assert expected_bad <= bad_total <= expected_bad + undecided
    assert routed >= stats.good  # every good line has a domain_userid
    assert truncated > 0  # the oversize records were exercised
    print(
        f"\n{TOTAL} lines in {elapsed:.1f} s: good {stats.good}, bad {bad_total} "
        f"({dict(stats.bad)}), decided {expected_good + expected_bad}, undecided {undecided}, "
        f"truncated letters {truncated}"
    )
