from __future__ import annotations

import orjson

from agents.ingest_step import MAX_ENTITY_EVENT_BYTES, DeadLetter, Routed, ingest_record
from signals_stream.events.event import Projection
from signals_stream.ops.stats import IngestStats
from signals_stream.routing import RoutingPlan, builtin_key
from tests.datafiles import read_lines

MICRO = read_lines("kafka-live-viewer-profiles/micro.1.tsv")
PAGE_URL = 29  # header.tsv: the 30th name


def _all_fields_plan() -> RoutingPlan:
    projection = Projection(frozenset(), frozenset(), frozenset(), all_fields=True)
    return RoutingPlan(keys=(builtin_key("domain_userid"),), projection=projection)


def _ingest(value: bytes, stats: IngestStats) -> Routed | DeadLetter:
    return ingest_record(value, topic="in", partition=0, offset=3, key=None,
                         plan=_all_fields_plan(), stats=stats, max_letter_bytes=900 * 1024,
                         now_ms=0)  # fmt: skip


def test_an_event_too_large_to_forward_is_a_size_violation_dead_letter() -> None:
    """A good event whose projection (here every field, a 1 MB URL) cannot fit one
    entity-events record would crash the forwarding: it is dead-lettered instead."""
    fields = MICRO[0].split(b"\t")
    fields[PAGE_URL] = b"https://example.com/?" + b"q" * MAX_ENTITY_EVENT_BYTES
    stats = IngestStats()
    outcome = _ingest(b"\t".join(fields), stats)
    assert isinstance(outcome, DeadLetter) and outcome.reason == "SizeViolation"
    letter = orjson.loads(outcome.value)
    assert letter["truncated"] is False and letter["raw_size"] == len(b"\t".join(fields))
    assert stats.good == 0 and stats.bad == {"SizeViolation": 1}
    fields[PAGE_URL] = b"https://example.com/?" + b"q" * 1000
    assert isinstance(_ingest(b"\t".join(fields), stats), Routed)
    assert stats.good == 1
