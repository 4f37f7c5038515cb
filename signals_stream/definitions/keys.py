"""Attribute keys: the entity an attribute is computed for, and where its id comes from.

The four built-in keys read the atomic column of the same name. A custom key reads any atomic,
event or entity property (``pageview_id`` from the ``web_page`` entity's ``id``). The deprecated
``key`` field names an atomic column; a key with only a name reads the column of that name when
there is one, and otherwise is a reference to a registered key (as groups embed it).
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any

from pydantic import ConfigDict, StringConstraints, field_validator, model_validator

from signals_stream.definitions._base import DefinitionModel, Name, Owner, Text
from signals_stream.definitions.durations import Duration
from signals_stream.definitions.properties import (
    JSON_COLUMNS,
    AtomicProperty,
    EntityProperty,
    EventProperty,
    LeafProperty,
)
from signals_stream.events.fields import FIELD_INDEX

__all__ = [
    "BUILTIN_KEYS",
    "DOMAIN_SESSIONID",
    "DOMAIN_USERID",
    "NETWORK_USERID",
    "USER_ID",
    "AttributeKey",
]

_Column = Annotated[str, StringConstraints(pattern=r"^[^\x00]*$", max_length=128)]
# Computed by the server and sent in responses; dropped on input so a GET body can be re-sent.
_SERVER_FIELDS = ("blobl_path",)


class AttributeKey(DefinitionModel):
    """An attribute key (formerly "entity").

    Unknown fields are kept and echoed (``extra="allow"``): a key carries no computation
    beyond its source, and a newer SDK's extra metadata must survive a publish round trip.

    Args:
        name: unique name; derived from ``external_column``, an atomic ``property``'s column or
            the last segment of an event/entity ``path`` when omitted.
        description: free text.
        key: deprecated; the atomic column holding the id.
        external_column: warehouse column holding the id (warehouse groups); equals ``name``.
        property: where the id comes from in an event (no ``date_part``).
        owner: owner, usually an email.
        ttl: fallback lifetime of the key's attribute values.
        is_published: the publish switch.
    """

    model_config = ConfigDict(extra="allow")

    name: Name
    description: Text | None = None
    key: Name | None = None
    external_column: _Column | None = None
    property: LeafProperty | None = None
    owner: Owner | None = None
    ttl: Duration | None = None
    is_published: bool = False

    @model_validator(mode="before")
    @classmethod
    def _derive_name(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = {k: v for k, v in data.items() if k not in _SERVER_FIELDS}
        if data.get("is_published", False) is None:  # nullable in the schema: the default
            del data["is_published"]
        if data.get("name") is None:
            derived = _derive_name(data)
            if derived is None:
                raise ValueError("name: required unless property or external_column is given")
            data["name"] = derived
        return data

    @field_validator("key")
    @classmethod
    def _key_is_column(cls, key: str | None) -> str | None:
        if key is not None and (key not in FIELD_INDEX or key in JSON_COLUMNS):
            raise ValueError(f"{key!r} is not an enriched-event column; use property instead")
        return key

    @model_validator(mode="after")
    def _consistent(self) -> AttributeKey:
        if self.external_column is not None and self.external_column != self.name:
            raise ValueError(
                f"external_column: must equal the name {self.name!r}, got {self.external_column!r}"
            )
        if self.property is not None:
            if self.key is not None:
                raise ValueError("key: deprecated; cannot be combined with property")
            if self.property.date_part is not None:
                raise ValueError("property.date_part: not allowed on an attribute key")
        return self

    @builtins.property  # the field `property` shadows the builtin in this class body
    def source(self) -> AtomicProperty | EventProperty | EntityProperty | None:
        """Where the key's value is read from in an event; ``None`` for a reference by name
        or a warehouse-only key."""
        if self.property is not None:
            return self.property
        column = self.key or self.name
        if column in FIELD_INDEX and column not in JSON_COLUMNS:
            return AtomicProperty(name=column)
        return None


def _derive_name(data: dict[str, Any]) -> str | None:
    if data.get("external_column"):
        return str(data["external_column"])
    prop = data.get("property")
    if isinstance(prop, AtomicProperty | EventProperty | EntityProperty):
        prop = prop.model_dump()
    if isinstance(prop, dict):
        if prop.get("type") == "atomic" and prop.get("name"):
            return str(prop["name"])
        if prop.get("path"):
            return str(prop["path"]).split(".")[-1]
    return None


DOMAIN_USERID = AttributeKey(
    name="domain_userid",
    key="domain_userid",
    description="The first-party cookie id of the browser (user level).",
)
DOMAIN_SESSIONID = AttributeKey(
    name="domain_sessionid",
    key="domain_sessionid",
    description="The domain session ID for the session.",
)
NETWORK_USERID = AttributeKey(
    name="network_userid",
    key="network_userid",
    description="The third-party cookie id set by the collector.",
)
USER_ID = AttributeKey(
    name="user_id",
    key="user_id",
    description="The business user id set by the tracker.",
)
BUILTIN_KEYS: Mapping[str, AttributeKey] = MappingProxyType(
    {key.name: key for key in (DOMAIN_USERID, DOMAIN_SESSIONID, NETWORK_USERID, USER_ID)}
)
