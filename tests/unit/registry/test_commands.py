"""Registry commands on the SDK's own request bodies (the wire capture): what is stored, what
is refused with which status, and what publishing does to the engine's catalog."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from signals_stream.definitions import AttributeGroup
from signals_stream.errors import DefinitionError, NotFoundError
from signals_stream.registry import (
    AlreadyExists,
    Change,
    Conflict,
    PublishSelection,
    Registry,
    create,
    delete,
    set_published,
    update,
)
from signals_stream.registry.entries import Entry, fixed_entries
from signals_stream.registry.render import render
from tests.unit.definitions.helpers import capture_bodies
from tests.unit.interventions.helpers import CART_ABANDON

GROUP: dict[str, Any] = next(
    b for label, b in capture_bodies("attribute_groups") if "my_group" in label
)
PAGEVIEW_KEY: dict[str, Any] = capture_bodies("attribute_keys")[0][1]
SERVICE = {
    "name": "my_service",
    "attribute_groups": [{"name": "my_group", "version": 1}],
    "owner": "me@example.com",
    "is_published": True,
}


def apply(registry: Registry, changes: list[Change]) -> None:
    """What every worker does with the records a command writes."""
    for change in changes:
        registry.apply(change.key, change.value())


def run_create(registry: Registry, kind: str, body: dict[str, Any], now: int = 1_000) -> Entry:
    entry, changes = create(registry, kind, body, now)  # type: ignore[arg-type]
    apply(registry, changes)
    return entry


def with_group() -> Registry:
    registry = Registry()
    run_create(registry, "attribute_groups", GROUP)
    return registry


def test_a_published_group_is_compiled_into_the_catalog() -> None:
    registry = with_group()
    catalog = registry.catalog()
    assert list(catalog.groups) == [("my_group", 1)]
    assert {s.since_ms for s in catalog.programs["domain_sessionid"].slots} == {1_000}


def test_creating_twice_is_400_so_the_sdk_retries_with_put() -> None:
    registry = with_group()
    with pytest.raises(AlreadyExists) as caught:
        create(registry, "attribute_groups", GROUP, 2_000)
    assert caught.value.http_status == 400
    entry, changes = update(registry, "attribute_groups", "my_group", 1, GROUP, 2_000)
    apply(registry, changes)
    # Re-publishing what is already published keeps the publication time: no state reset.
    assert registry.get("attribute_groups", "my_group").published_at_ms == 1_000


def test_an_invalid_body_is_422_naming_the_field() -> None:
    body = copy.deepcopy(GROUP)
    body["attributes"][0]["aggregation"] = "median"
    with pytest.raises(DefinitionError) as caught:
        create(Registry(), "attribute_groups", body, 1)
    assert caught.value.http_status == 422
    assert "attributes.0.aggregation" in str(caught.value)


def test_put_must_describe_the_item_of_its_path() -> None:
    with pytest.raises(DefinitionError, match="path names"):
        update(Registry(), "attribute_groups", "my_group", 2, GROUP, 1)


def test_unpublishing_and_publishing_again_starts_counting_afresh() -> None:
    registry = with_group()
    apply(
        registry,
        update(
            registry, "attribute_groups", "my_group", 1, {**GROUP, "is_published": False}, 2_000
        )[1],
    )
    assert registry.get("attribute_groups", "my_group").published_at_ms is None
    assert registry.catalog().groups == {}
    apply(registry, update(registry, "attribute_groups", "my_group", 1, GROUP, 3_000)[1])
    slots = registry.catalog().programs["domain_sessionid"].slots
    assert {s.since_ms for s in slots} == {3_000}


def test_a_new_version_keeps_the_state_of_unchanged_attributes() -> None:
    registry = with_group()
    v2 = {**copy.deepcopy(GROUP), "version": 2}
    v2["attributes"] = v2["attributes"][:2]
    run_create(registry, "attribute_groups", v2, now=5_000)
    slots = registry.catalog().programs["domain_sessionid"].slots
    # The shared slots count from v1's publication; none starts at v2's.
    assert {s.since_ms for s in slots} == {1_000}


def test_an_embedded_custom_key_is_registered_with_its_group() -> None:
    registry = Registry()
    body = {**copy.deepcopy(GROUP), "attribute_key": PAGEVIEW_KEY}
    run_create(registry, "attribute_groups", body)
    assert registry.get("attribute_keys", "pageview_id").model.property is not None


def test_a_group_on_an_unknown_key_without_a_source_is_refused() -> None:
    body = {**copy.deepcopy(GROUP), "attribute_key": {"name": "no_such_key"}}
    with pytest.raises(DefinitionError, match="not registered"):
        create(Registry(), "attribute_groups", body, 1)


def test_a_service_must_pin_existing_group_versions() -> None:
    with pytest.raises(DefinitionError, match="attribute_groups.0"):
        create(Registry(), "services", SERVICE, 1)
    registry = with_group()
    run_create(registry, "services", SERVICE)
    assert registry.get("services", "my_service").model.attribute_groups[0].version == 1


def test_publishing_a_rule_on_a_missing_group_is_refused() -> None:
    with pytest.raises(DefinitionError, match="my_group"):
        create(Registry(), "interventions", CART_ABANDON, 1)


def test_unpublishing_a_group_unpublishes_the_rules_that_need_it() -> None:
    registry = with_group()
    run_create(registry, "interventions", CART_ABANDON)
    assert registry.catalog().rules.skipped == {}
    changes = set_published(
        registry,
        PublishSelection.parse({"attribute_groups": [{"name": "my_group", "version": 1}]}),
        False,
        9,
    )
    apply(registry, changes)
    assert not registry.get("interventions", "cart_abandon", 1).is_published
    assert not registry.get("attribute_groups", "my_group", 1).is_published


def test_publish_selection_reports_nothing_to_do() -> None:
    registry = with_group()
    selection = PublishSelection.parse({"attribute_groups": [{"name": "my_group", "version": 1}]})
    assert set_published(registry, selection, True, 5) == []
    with pytest.raises(NotFoundError):
        set_published(registry, PublishSelection.parse({"services": [{"name": "nope"}]}), True, 5)


def test_delete_needs_unpublished_and_unused() -> None:
    registry = with_group()
    run_create(registry, "services", SERVICE)
    with pytest.raises(Conflict, match="unpublish"):
        delete(registry, "attribute_groups", "my_group", 1, 5)
    apply(
        registry,
        update(registry, "attribute_groups", "my_group", 1, {**GROUP, "is_published": False}, 6)[1],
    )
    with pytest.raises(Conflict, match="pinned by service"):
        delete(registry, "attribute_groups", "my_group", 1, 7)
    apply(registry, delete(registry, "services", "my_service", None, 8))
    apply(registry, delete(registry, "attribute_groups", "my_group", 1, 9))
    with pytest.raises(NotFoundError):
        registry.get("attribute_groups", "my_group")


def test_built_in_keys_are_registered_and_permanent() -> None:
    registry = Registry()
    assert {e.name for e in registry.list("attribute_keys")} == {
        "domain_userid",
        "domain_sessionid",
        "network_userid",
        "user_id",
    }
    with pytest.raises(Conflict, match="built in"):
        delete(registry, "attribute_keys", "domain_userid", None, 1)
    # Publishing one (the SDK does when it is in the list) succeeds and writes nothing.
    _, changes = update(
        registry, "attribute_keys", "domain_userid", None, {"name": "domain_userid"}, 1
    )
    assert changes == []


def test_a_key_in_use_cannot_be_deleted() -> None:
    registry = Registry()
    run_create(registry, "attribute_keys", PAGEVIEW_KEY)
    run_create(
        registry,
        "attribute_groups",
        {**copy.deepcopy(GROUP), "attribute_key": {"name": "pageview_id"}},
    )
    with pytest.raises(Conflict, match="used by attribute group"):
        delete(registry, "attribute_keys", "pageview_id", None, 2)


def test_definitions_file_entries_are_read_only_and_win_over_the_log() -> None:
    group = AttributeGroup.parse(GROUP)
    registry = Registry(fixed_entries(groups=[group]))
    with pytest.raises(AlreadyExists):
        create(registry, "attribute_groups", GROUP, 1)
    with pytest.raises(Conflict, match="definitions file"):
        update(registry, "attribute_groups", "my_group", 1, GROUP, 1)
    # A record written before the file named it does not replace the file's definition.
    other = Registry()
    _, changes = create(other, "attribute_groups", {**GROUP, "description": "from the log"}, 1)
    apply(registry, changes)
    assert registry.get("attribute_groups", "my_group").model.description is None
    assert {s.since_ms for s in registry.catalog().programs["domain_sessionid"].slots} == {0}


def test_a_tombstone_deletes_and_log_records_round_trip() -> None:
    registry = with_group()
    entry = registry.get("attribute_groups", "my_group")
    assert Entry.decode(entry.key, entry.encode()) == entry
    registry.apply(entry.key, None)
    assert registry.find("attribute_groups", "my_group") is None


def test_responses_carry_the_server_fields_the_sdk_requires() -> None:
    registry = with_group()
    body = render(registry.get("attribute_groups", "my_group"), registry)
    assert body["full_name"] == body["feast_name"] == "my_group_v1"
    assert body["attribute_key_or_name"] == "domain_sessionid"
    assert body["attribute_key"]["blobl_path"] == "this.domain_sessionid"
    assert body["stream_source_name"] == "stream"
    assert body["attribute_group_or_attribute_key_ttl"] == "P30D"
    # The echo validates as the SDK's input model would: the capture's own body plus extras.
    key = body.pop("attribute_key")
    assert {k: key[k] for k in GROUP["attribute_key"]} == GROUP["attribute_key"]
    assert {k: body[k] for k in GROUP if k != "attribute_key"} == {
        k: v for k, v in GROUP.items() if k != "attribute_key"
    }


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("interventions", {**CART_ABANDON, "version": 2**70}),
        ("attribute_groups", {**GROUP, "version": 2**64}),
        ("services", {**SERVICE, "attribute_groups": [{"name": "my_group", "version": 2**65}]}),
    ],
)
def test_numbers_beyond_64_bits_are_422_not_a_crash(kind: str, body: dict[str, Any]) -> None:
    with pytest.raises(DefinitionError, match="64 bits"):
        create(with_group(), kind, body, 1)  # type: ignore[arg-type]
