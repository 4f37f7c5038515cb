"""Warehouse (external batch) groups in the registry: the SDK's body, refresh_rate and TTL
defaults, and the batch tooling's ``PUT .../batch_source``."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from signals_stream.definitions import AttributeGroup
from signals_stream.errors import DefinitionError, NotFoundError
from signals_stream.registry import PublishSelection, Registry, set_batch_source, set_published
from tests.unit.registry.test_commands import apply, run_create

# The external-batch body of the SDK wire capture (signals.md §2.3), with an owner.
EXTERNAL: dict[str, Any] = {
    "name": "crm",
    "version": 1,
    "owner": "me@example.com",
    "attribute_key": {"name": "CUSTOMER_ID", "external_column": "CUSTOMER_ID"},
    "ttl": "P1Y",
    "batch_source": {
        "name": "crm_src",
        "timestamp_field": "UPDATED_AT",
        "database": "DB",
        "schema": "SCH",
        "table": "CRM",
    },
    "offline": True,
    "fields": [{"name": "LTV", "type": "double"}],
    "backfill_since_tstamp": "2026-06-01T00:00:00Z",
}


def test_the_sdk_body_is_an_external_group_with_signals_defaults() -> None:
    group = AttributeGroup.parse(EXTERNAL)
    assert group.kind == "external_batch"
    assert group.id_column == "CUSTOMER_ID"
    assert group.sync_every == timedelta(hours=1)  # refresh_rate unset: hourly
    assert group.warehouse_ttl == timedelta(days=365)
    no_ttl = AttributeGroup.parse({k: v for k, v in EXTERNAL.items() if k != "ttl"})
    assert no_ttl.warehouse_ttl == timedelta(days=365)
    assert AttributeGroup.parse({**EXTERNAL, "refresh_rate": "PT6H"}).sync_every == timedelta(
        hours=6
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"refresh_rate": "PT30S"}, "refresh_rate"),
        ({"fields": []}, "fields"),
        ({"batch_source": None}, "batch_source"),
        ({"fields": [{"name": "LTV", "type": "money"}]}, "fields"),
        ({"batch_source": {**EXTERNAL["batch_source"], "table": "no spaces"}}, "table"),
    ],
)
def test_a_bad_warehouse_group_names_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(DefinitionError, match=field):
        AttributeGroup.parse({**EXTERNAL, **change})


def test_publish_put_batch_source_and_the_tooling_spelling() -> None:
    registry = Registry()
    run_create(registry, "attribute_groups", {**EXTERNAL, "is_published": False})
    body = {
        "database": "warehouse",
        "wh_schema": "crm",  # the batch tooling's BatchSourceConfig spelling
        "table": "customers",
        "name": "customers_src",
        "timestamp_field": "updated_at",
        "created_timestamp_column": "created_at",
    }
    entry, changes = set_batch_source(registry, "crm", 1, body, 2_000)
    apply(registry, changes)
    stored = registry.get("attribute_groups", "crm", 1).model
    assert stored.batch_source.schema_ == "crm"
    assert stored.batch_source.table == "customers"
    assert stored.batch_source.timestamp_field == "updated_at"
    assert stored.fields == AttributeGroup.parse(EXTERNAL).fields  # the rest is unchanged
    assert not stored.is_published  # publishing stays engines/publish
    switched = set_published(
        registry, PublishSelection.parse({"attribute_groups": [{"name": "crm", "version": 1}]}),
        True, 3_000,
    )  # fmt: skip
    apply(registry, switched)
    assert registry.get("attribute_groups", "crm", 1).is_published


def test_batch_source_errors() -> None:
    registry = Registry()
    run_create(registry, "attribute_groups", EXTERNAL)
    bad = copy.deepcopy(EXTERNAL["batch_source"])
    del bad["timestamp_field"]
    with pytest.raises(DefinitionError, match="timestamp_field"):
        set_batch_source(registry, "crm", 1, bad, 2_000)
    with pytest.raises(NotFoundError):
        set_batch_source(registry, "crm", 2, EXTERNAL["batch_source"], 2_000)
    with pytest.raises(DefinitionError, match="JSON object"):
        set_batch_source(registry, "crm", 1, [1], 2_000)
