"""Response bodies: the stored definition as the SDK sent it, plus the server fields the SDK's
response models require (``AttributeGroupResponse`` fails without ``full_name`` and friends)."""

from __future__ import annotations

from typing import Any

from signals_stream.definitions import AttributeGroup, AttributeKey
from signals_stream.registry.entries import Entry, Registry

__all__ = ["key_wire", "render"]


def render(entry: Entry, registry: Registry) -> dict[str, Any]:
    """The JSON body answering a read or write of ``entry``."""
    body = entry.model.to_wire()
    body.setdefault("is_published", entry.is_published)
    if entry.kind == "attribute_keys":
        body["blobl_path"] = _blobl_path(entry.model)
    elif entry.kind == "attribute_groups":
        body.update(_group_fields(entry.model, registry))
    elif entry.kind == "event_logs":
        body["has_published_version"] = entry.has_published_version
    return body


def _group_fields(group: AttributeGroup, registry: Registry) -> dict[str, Any]:
    registered = registry.find("attribute_keys", group.attribute_key.name)
    key: AttributeKey = registered.model if registered is not None else group.attribute_key
    ttl = group.to_wire().get("ttl") or key.to_wire().get("ttl")
    return {
        "attribute_key": {**group.attribute_key.to_wire(), "blobl_path": _blobl_path(key)},
        "attribute_key_or_name": group.attribute_key_or_name,
        "attribute_group_or_attribute_key_ttl": ttl,
        "full_name": group.full_name,
        "feast_name": group.full_name,
        "stream_source_name": "stream" if group.kind == "stream" else None,
    }


def key_wire(key: AttributeKey) -> dict[str, Any]:
    """A key as the SDK reads it back (``AttributeKeyOutput``: with ``blobl_path``)."""
    return {**key.to_wire(), "blobl_path": _blobl_path(key)}


def _blobl_path(key: AttributeKey) -> str | None:
    """Where Snowplow's stream engine reads the id (a Bloblang path), for atomic columns."""
    source = key.source
    if source is not None and getattr(source, "type", None) == "atomic":
        return f"this.{source.name}"
    return None
