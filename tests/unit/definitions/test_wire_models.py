"""The models accept exactly what SDK 0.4.10 sends, and echo it back unchanged."""

from __future__ import annotations

from datetime import timedelta

import pytest

from signals_stream.definitions import (
    BUILTIN_KEYS,
    DOMAIN_SESSIONID,
    Attribute,
    AttributeGroup,
    AttributeKey,
    CalculatedProperty,
    EntityProperty,
)
from signals_stream.errors import DefinitionError

from .helpers import capture_bodies, capture_result

GROUPS = capture_bodies("attribute_groups")
KEYS = capture_bodies("attribute_keys") + capture_bodies("embedded_keys")


def _dump_unset(model: AttributeGroup | AttributeKey) -> dict:
    return model.model_dump(mode="json", by_alias=True, exclude_unset=True)


def test_capture_has_every_definition_kind() -> None:
    kinds = {AttributeGroup.parse(body).kind for _, body in GROUPS}
    assert kinds == {"stream", "external_batch"}
    assert len(GROUPS) >= 10 and len(KEYS) >= 10


@pytest.mark.parametrize(("label", "body"), GROUPS, ids=[label for label, _ in GROUPS])
def test_group_round_trips(label: str, body: dict) -> None:
    group = AttributeGroup.parse(body)
    assert group.to_wire() == body
    assert _dump_unset(group) == body
    assert AttributeGroup.parse(group.to_wire()) == group


@pytest.mark.parametrize(("label", "body"), KEYS, ids=[label for label, _ in KEYS])
def test_key_round_trips(label: str, body: dict) -> None:
    key = AttributeKey.parse(body)
    assert _dump_unset(key) == body
    assert AttributeKey.parse(key.to_wire()) == key


def test_parse_accepts_json_text_and_bytes() -> None:
    _, body = GROUPS[0]
    import orjson

    raw = orjson.dumps(body)
    assert (
        AttributeGroup.parse(raw)
        == AttributeGroup.parse(raw.decode())
        == AttributeGroup.parse(body)
    )


def test_captured_group_content() -> None:
    group = AttributeGroup.parse(next(b for _, b in GROUPS if b["name"] == "my_group"))
    assert group.full_name == "my_group_v1"
    assert group.attribute_key_or_name == "domain_sessionid"
    assert group.ttl == timedelta(days=30)
    cart = group.attribute("cart_value")
    assert isinstance(cart.property, EntityProperty) and cart.property.index == 0
    assert cart.ttl == timedelta(days=7)
    assert group.attribute_ttl(cart) == timedelta(days=7)
    assert group.attribute_ttl(group.attribute("last_url")) == timedelta(days=30)
    full_name = group.attribute("full_name").property
    assert isinstance(full_name, CalculatedProperty) and full_name.separator == " "
    assert group.attribute("page_view_count").period == timedelta(minutes=15)
    with pytest.raises(KeyError):
        group.attribute("nope")


def test_custom_key_from_capture() -> None:
    ((_, body),) = capture_bodies("attribute_keys")
    key = AttributeKey.parse(body)
    assert key.name == "pageview_id"
    assert isinstance(key.source, EntityProperty) and key.source.path == "id"
    assert key.ttl == timedelta(days=1)


def test_get_response_can_be_published_again() -> None:
    """A GET body carries server fields; they are dropped and the rest is kept."""
    response = capture_result("get_attribute_group_v")
    group = AttributeGroup.parse(response)
    assert group.version == 2 and group.full_name == "my_group_v2"
    dumped = group.to_wire()
    for server_field in ("full_name", "feast_name", "stream_source_name", "attribute_key_or_name"):
        assert server_field not in dumped
    assert "blobl_path" not in dumped["attribute_key"]


def test_unknown_group_and_key_fields_are_kept_and_echoed() -> None:
    _, body = GROUPS[0]
    newer = {**body, "labels": ["a"], "attribute_key": {**body["attribute_key"], "tier": "gold"}}
    group = AttributeGroup.parse(newer)
    assert group.to_wire() == newer


def test_unknown_attribute_fields_are_rejected() -> None:
    _, body = GROUPS[0]
    attrs = [dict(body["attributes"][0], window="PT1H"), *body["attributes"][1:]]
    with pytest.raises(DefinitionError, match=r"attributes\.0\.window: Extra inputs"):
        AttributeGroup.parse({**body, "attributes": attrs})


def test_definitions_are_frozen_and_hashable() -> None:
    _, body = GROUPS[0]
    group = AttributeGroup.parse(body)
    with pytest.raises(Exception, match="frozen"):
        group.name = "x"  # type: ignore[misc]
    assert hash(group) == hash(AttributeGroup.parse(body))
    assert len({group, AttributeGroup.parse(body)}) == 1


def test_construction_raises_definition_error() -> None:
    with pytest.raises(DefinitionError, match="aggregation: Input should be"):
        Attribute(name="x", type="int32", events=[], aggregation="count")


def test_builtin_keys() -> None:
    assert set(BUILTIN_KEYS) == {"domain_userid", "domain_sessionid", "network_userid", "user_id"}
    for name, key in BUILTIN_KEYS.items():
        assert key.name == key.key == name
        assert key.source is not None and key.source.name == name
    # The SDK embeds the built-in key exactly like this.
    assert DOMAIN_SESSIONID.to_wire() == GROUPS[0][1]["attribute_key"]


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ({"external_column": "CUSTOMER_ID"}, "CUSTOMER_ID"),
        ({"property": {"type": "atomic", "name": "app_id"}}, "app_id"),
        (
            {"property": {"type": "entity", "vendor": "com.acme", "name": "user",
                          "major_version": 1, "path": "$.profile.tier"}},
            "tier",
        ),
    ],
)  # fmt: skip
def test_key_name_is_derived_when_omitted(body: dict, name: str) -> None:
    assert AttributeKey.parse(body).name == name


def test_deprecated_key_form() -> None:
    key = AttributeKey(name="user", key="domain_userid")
    assert key.source is not None and key.source.name == "domain_userid"


def test_name_only_key_is_a_reference() -> None:
    assert AttributeKey(name="domain_userid").source is not None
    assert AttributeKey(name="pageview_id").source is None


def test_batch_group_is_accepted_but_not_stream() -> None:
    _, body = GROUPS[0]
    group = AttributeGroup.parse({**body, "offline": True})
    assert group.kind == "batch"


def test_nullable_fields_with_defaults() -> None:
    _, body = GROUPS[0]
    key = {**body["attribute_key"], "is_published": None}
    group = AttributeGroup.parse(
        {**body, "version": None, "is_published": None, "attribute_key": key}
    )
    assert (group.version, group.is_published, group.attribute_key.is_published) == (
        1,
        False,
        False,
    )


def test_an_unknown_field_sent_as_null_is_absent_and_the_body_round_trips() -> None:
    # Found by the definition fuzz test: a kept unknown field holding None made parse(to_wire())
    # differ from the parsed model, since the wire form omits None.
    parsed = AttributeKey.parse({"name": "k", "version": None, "future_field": "kept"})
    assert parsed.to_wire() == {"name": "k", "is_published": False, "future_field": "kept"}
    assert AttributeKey.parse(parsed.to_wire()) == parsed
