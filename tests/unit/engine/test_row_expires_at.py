"""``row_expires_at_ms`` names the instant from which ``row_expired`` holds: the Redis copy of a
row (PEXPIRE) goes exactly when the table's sweep may delete the row."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from signals_stream.definitions import AttributeGroup
from signals_stream.engine import Catalog, row_expired
from signals_stream.engine.expiry import row_expires_at_ms
from signals_stream.engine.row import EntityRow

T0 = 1_800_000_000_000


def _group(name: str, ttl: str | None, event: str) -> AttributeGroup:
    """One counter per group; a distinct event name gives each its own state slot."""
    body = {
        "name": name,
        "version": 1,
        "attribute_key": {"name": "domain_userid"},
        "is_published": True,
        "attributes": [
            {"name": "a", "type": "int32", "events": [{"name": event}], "aggregation": "counter"}
        ],
    }
    if ttl is not None:
        body["ttl"] = ttl
    return AttributeGroup.parse(body)


TTLS = st.sampled_from([None, "PT10S", "PT1M", "PT1H"])
OFFSETS = st.integers(min_value=-3_600_000, max_value=3_600_000)


@settings(max_examples=300, deadline=None)
@given(
    ttls=st.tuples(TTLS, TTLS, TTLS),
    published=st.tuples(OFFSETS, OFFSETS, OFFSETS),
    updates=st.lists(st.one_of(st.none(), OFFSETS), min_size=3, max_size=3),
    row_updated=st.one_of(st.none(), OFFSETS),
    probes=st.lists(st.integers(min_value=-7_200_000, max_value=8 * 86_400_000), max_size=20),
    unknown_key=st.booleans(),
)
def test_expiry_instant_matches_row_expired(
    ttls, published, updates, row_updated, probes, unknown_key
) -> None:  # noqa: ANN001
    groups = [_group(f"g{i}", ttl, f"event_{i}") for i, ttl in enumerate(ttls)]
    catalog = Catalog.build(
        groups, published_at_ms={(f"g{i}", 1): T0 + p for i, p in enumerate(published)}
    )
    program = None if unknown_key else catalog.programs["domain_userid"]
    row = EntityRow()
    row.updated_ms = None if row_updated is None else T0 + row_updated
    slots = catalog.programs["domain_userid"].slots
    assert len(slots) == 3
    for slot, update in zip(slots, updates, strict=True):
        if update is not None:
            row.attrs[slot.id] = [1, T0 + update]
    expires = row_expires_at_ms(row, program)
    instants = [T0 + p for p in probes] + ([] if expires is None else [expires - 1, expires])
    for now in instants:
        assert row_expired(row, program, now) == (expires is not None and now >= expires)
