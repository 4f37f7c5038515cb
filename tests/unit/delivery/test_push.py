"""Direct pushes, the pure part: targets from the query, SDK-shaped instances, receipts."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from snowplow_signals.models.model import InterventionInstance as SdkInstance

from signals_stream.delivery.push import (
    MAX_PUSH_TARGETS,
    DeliveryReceipts,
    TooManyTargets,
    push_instances,
    push_targets,
)
from signals_stream.errors import DefinitionError

ID = "0b0f3c5e-2f7a-4c11-9a55-0d5d8f0e4a11"


def test_targets_keep_query_order_and_repeated_keys_without_duplicates_or_empty_ids() -> None:
    query = [
        ("domain_sessionid", "a"),
        ("domain_sessionid", "b"),
        ("domain_userid", "u"),
        ("domain_sessionid", "a"),
        ("domain_userid", ""),
    ]
    assert push_targets(query) == [
        ("domain_sessionid", "a"),
        ("domain_sessionid", "b"),
        ("domain_userid", "u"),
    ]


def test_too_many_targets_are_refused() -> None:
    push_targets(("domain_userid", str(n)) for n in range(MAX_PUSH_TARGETS))
    with pytest.raises(TooManyTargets, match="at most"):
        push_targets(("domain_userid", str(n)) for n in range(MAX_PUSH_TARGETS + 1))


def test_every_target_gets_an_sdk_instance_sharing_the_server_id() -> None:
    body = orjson.dumps(
        {
            "name": "direct",
            "version": 2,
            "attributes": {"k": "v"},
            "intervention_id": "chosen-by-the-client",
            "target_attribute_key": {"name": "x", "id": "y"},
        }
    )
    targets = [("domain_sessionid", "s1"), ("domain_userid", "u1")]
    instances = push_instances(body, targets, intervention_id=ID, now_ms=1234)
    assert [SdkInstance.model_validate(i).target_attribute_key.id for i in instances] == [
        "s1",
        "u1",
    ]
    for instance, (name, id_) in zip(instances, targets, strict=True):
        assert instance == {
            "intervention_id": ID,
            "name": "direct",
            "version": 2,
            "target_attribute_key": {"name": name, "id": id_},
            "attributes": {"k": "v"},
            "triggered_at_ms": 1234,
        }


def test_a_body_without_attributes_sends_an_empty_map() -> None:
    [instance] = push_instances(
        b'{"name": "n", "version": 1}', [("k", "i")], intervention_id=ID, now_ms=0
    )
    assert instance["attributes"] == {}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"version": 1}', "name"),
        (b'{"name": "n"}', "version"),
        (b'{"name": "n", "version": "one"}', "version"),
        (b'{"name": "n", "version": 1, "attributes": {"a": 1}}', "attributes.a"),
        (b'{"name": "", "version": 1}', "name"),
        (b"[1]", "InterventionInstance"),
        (b"not json", "InterventionInstance"),
    ],
)
def test_an_invalid_body_names_the_field(body: bytes, field: str) -> None:
    with pytest.raises(DefinitionError, match=field):
        push_instances(body, [("k", "i")], intervention_id=ID, now_ms=0)


async def test_a_receipt_resolves_only_the_push_waiting_for_it() -> None:
    receipts = DeliveryReceipts()
    with receipts.expecting("mine") as received:
        assert receipts.waiting == 1
        assert not receipts.deliver("another-workers")
        assert not received.done()
        assert receipts.deliver("mine")
        assert receipts.deliver("mine")  # a second subscriber's receipt is harmless
        await asyncio.wait_for(received, 1)
    assert receipts.waiting == 0
    assert not receipts.deliver("mine")  # too late: nobody waits any more
