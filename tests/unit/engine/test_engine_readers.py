"""Per-reader settings of shared state, and key identity, on the ecommerce seed.

Signals shares one state between identical attributes (``definition_hash``), and
``docs/semantics.md`` leaves ``time_unit`` and ``default_value`` out of the hash because they
are "applied at read", per reader. These tests read the same slot through two readers that
differ only there, and check that two groups naming one key cannot silently mix two id sources.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from signals_stream.definitions import AttributeGroup
from signals_stream.engine import Catalog
from signals_stream.errors import DefinitionError
from tests.unit.engine.groups import OWNER, SHOPPER, SHOPPER_V2, atomic, build_catalog, entity
from tests.unit.engine.workload import READ_MS, ecommerce_lines, replay, seed_facts


def _users() -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for fact in seed_facts():
        if fact.domain_userid:
            out.setdefault(fact.domain_userid, []).append(fact)
    return out


def test_each_reader_of_a_shared_time_since_slot_gets_its_own_time_unit() -> None:
    v2 = copy.deepcopy(SHOPPER_V2)
    seconds = {
        **next(a for a in SHOPPER["attributes"] if a["name"] == "minutes_since_last"),
        "name": "seconds_since_last",
        "time_unit": "s",
    }
    v2["attributes"].append(seconds)
    catalog = build_catalog(SHOPPER, v2)
    in_minutes = {a.name: a for a in catalog.group("shopper", 1).attributes}["minutes_since_last"]
    in_seconds = {a.name: a for a in catalog.group("shopper", 2).attributes}["seconds_since_last"]
    assert in_minutes.slot is in_seconds.slot  # time_unit is not part of the state
    run = replay(ecommerce_lines(), catalog)
    for user, facts in _users().items():
        elapsed_ms = READ_MS - max(f.time_ms for f in facts)
        assert run.read("shopper", user, version=1)["minutes_since_last"] == pytest.approx(
            elapsed_ms / 60_000
        )
        assert run.read("shopper", user, version=2)["seconds_since_last"] == pytest.approx(
            elapsed_ms / 1_000
        )


def test_an_explicit_null_default_value_means_the_automatic_default() -> None:
    """Response bodies (and so GET -> re-publish round trips) carry ``"default_value": null``
    for every attribute without a default; null is "not set", not "default to null"."""
    body = copy.deepcopy(SHOPPER_V2)
    for attribute in body["attributes"]:
        attribute.setdefault("default_value", None)
    as_sent = {**copy.deepcopy(SHOPPER_V2), "name": "shopper_sent"}
    catalog = build_catalog(body, as_sent)
    run = replay(ecommerce_lines(), catalog)
    no_transactions = [
        u for u, fs in _users().items() if not any(f.action == "transaction" for f in fs)
    ]
    assert no_transactions
    for user in no_transactions:
        sent = run.read("shopper_sent", user)
        echoed = run.read("shopper", user)
        assert sent["transactions"] == 0  # automatic counter default
        assert echoed == sent


def test_two_groups_naming_one_key_with_different_id_sources_are_not_silently_merged() -> None:
    """``shop_id`` from the ecommerce user entity in one group, from ``domain_sessionid`` in
    another. Either the catalog refuses the conflict, or each group is keyed by its own
    source; routing both by the first group's key is wrong."""

    def group(name: str, prop: dict[str, Any]) -> AttributeGroup:
        return AttributeGroup.parse(
            {
                "name": name,
                "version": 1,
                "owner": OWNER,
                "is_published": True,
                "attribute_key": {"name": "shop_id", "property": prop},
                "attributes": [
                    {"name": "events", "type": "int32", "events": [], "aggregation": "counter"}
                ],
            }
        )

    by_user = group("by_user", entity("user", "id"))
    by_session = group("by_session", atomic("domain_sessionid"))
    try:
        catalog = Catalog.build([by_user, by_session])
    except DefinitionError:
        return
    run = replay(ecommerce_lines(), catalog)
    sessions: dict[str, int] = {}
    for fact in seed_facts():
        if fact.domain_sessionid:
            sessions[fact.domain_sessionid] = sessions.get(fact.domain_sessionid, 0) + 1
    for session, events in sessions.items():
        assert run.read("by_session", session)["events"] == events
