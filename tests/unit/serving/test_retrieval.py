"""Which columns a get-online-attributes request gets, and the columnar answer."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from signals_stream.engine import fold_events
from signals_stream.engine.row import EntityRow
from signals_stream.errors import DefinitionError, NotFoundError
from signals_stream.registry import OnlineAttributesRequest, Registry, create
from signals_stream.serving.retrieval import answer, needed_rows, resolve_columns
from tests.unit.definitions.helpers import make_event


def _group(name: str, key: str, *attributes: str) -> dict[str, Any]:
    return {
        "name": name,
        "version": 1,
        "attribute_key": {"name": key},
        "is_published": True,
        "attributes": [
            {"name": a, "type": "int32", "events": [], "aggregation": "counter"} for a in attributes
        ],
    }


def _registry() -> Registry:
    registry = Registry()
    for body in (
        _group("users", "domain_userid", "events", "shared"),
        _group("sessions", "domain_sessionid", "session_events", "shared"),
        {
            "name": "both",
            "owner": "me@example.com",
            "attribute_groups": [
                {"name": "users", "version": 1},
                {"name": "sessions", "version": 1},
            ],
        },
    ):
        kind = "services" if "attribute_groups" in body else "attribute_groups"
        _, changes = create(registry, kind, body, 1)
        for change in changes:
            registry.apply(change.key, change.value())
    return registry


def _request(**body: Any) -> OnlineAttributesRequest:
    return OnlineAttributesRequest.parse(body)


def test_a_service_serves_the_groups_of_the_requested_key() -> None:
    registry = _registry()
    request = _request(attribute_keys={"domain_userid": ["u1", "u2"]}, service="both")
    columns = resolve_columns(request, registry.catalog(), registry)
    assert [c.name for c in columns] == ["events", "shared"]
    assert needed_rows(request, columns) == {("domain_userid", "u1"), ("domain_userid", "u2")}


def test_full_names_and_collisions() -> None:
    registry = _registry()
    catalog = registry.catalog()
    keys = {"domain_userid": ["u"], "domain_sessionid": ["s"]}
    wanted = ["users_v1:shared", "sessions_v1:shared"]
    bare = resolve_columns(_request(attribute_keys=keys, attributes=wanted), catalog, registry)
    assert [(c.name, c.key_name) for c in bare] == [("shared", "domain_userid")]
    full = resolve_columns(
        _request(attribute_keys=keys, attributes=wanted, full_attribute_names=True),
        catalog,
        registry,
    )
    assert [c.name for c in full] == ["users_v1:shared", "sessions_v1:shared"]


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        ({"attributes": ["users_v2:events"]}, NotFoundError, "version 2"),
        ({"attributes": ["users_v1:nope"]}, NotFoundError, "no attribute 'nope'"),
        ({"attributes": ["sessions_v1:shared"]}, DefinitionError, "domain_sessionid"),
        ({"service": "nope"}, NotFoundError, "service 'nope'"),
    ],
)
def test_unanswerable_requests_say_why(body: dict[str, Any], error: type, message: str) -> None:
    registry = _registry()
    request = _request(attribute_keys={"domain_userid": ["u"]}, **body)
    with pytest.raises(error, match=message):
        resolve_columns(request, registry.catalog(), registry)


@pytest.mark.parametrize(
    "body",
    [
        {"attribute_keys": {"domain_userid": ["u"]}},
        {"attribute_keys": {"domain_userid": ["u"]}, "attributes": [], "service": "s"},
        {"attribute_keys": {"domain_userid": []}, "service": "s"},
        {"attribute_keys": {"domain_userid": [str(i) for i in range(101)]}, "service": "s"},
        {"attribute_keys": {"a": ["1"], "b": ["1", "2"]}, "service": "s"},
        {"attribute_keys": {"domain_userid": ["u"]}, "attributes": ["no-version:x"]},
    ],
)
def test_malformed_requests_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(DefinitionError):
        OnlineAttributesRequest.parse(body)


def test_the_answer_is_columnar_and_aligned_with_the_ids() -> None:
    registry = _registry()
    catalog = registry.catalog()
    request = _request(
        attribute_keys={"domain_userid": ["u2", "u1"]}, attributes=["users_v1:events"]
    )
    columns = resolve_columns(request, catalog, registry)
    row = EntityRow()
    event = make_event(domain_userid="u1")
    fold_events(row, catalog.programs["domain_userid"], [event, copy.copy(event)], 5)
    body = answer(request, columns, {("domain_userid", "u1"): row}, 10)
    assert body == {"domain_userid": ["u2", "u1"], "events": [0, 2]}
