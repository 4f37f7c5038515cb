"""Wire models of the registry API that are not engine definitions: services, the
selective publish request and the attribute retrieval request (as SDK 0.4.10 sends them)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from signals_stream.definitions._base import DefinitionModel, Name, Owner, Text, null_is_default
from signals_stream.definitions.event_logs import EventLog
from signals_stream.interventions.definitions import GroupLink

__all__ = [
    "MAX_IDS",
    "EventLog",
    "NameLink",
    "OnlineAttributesRequest",
    "PublishSelection",
    "Service",
]

MAX_IDS = 100  # ids per attribute key in one retrieval (AttributeKeyIdentifiers, 1..100)

QualifiedAttribute = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9_]+_v[0-9]+:[A-Za-z0-9_]+$", max_length=300)
]
_Id = Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class Service(DefinitionModel):
    """A named set of pinned group versions, retrieved in one call. Not versioned.

    Args:
        name: service name.
        attribute_groups: the pinned ``{name, version}`` groups (1..100).
        description: free text.
        owner: owner, usually an email.
        is_published: stored and echoed; services cause no processing.
    """

    model_config = ConfigDict(extra="allow")

    name: Name
    attribute_groups: tuple[GroupLink, ...] = Field(min_length=1, max_length=100)
    description: Text | None = None
    owner: Owner | None = None
    is_published: bool = True

    @model_validator(mode="before")
    @classmethod
    def _null_is_default(cls, data: Any) -> Any:
        return null_is_default(data, "is_published")


class NameLink(DefinitionModel):
    """An unversioned reference: ``{"name": ...}``."""

    model_config = ConfigDict(extra="ignore")

    name: Name


class PublishSelection(DefinitionModel):
    """``engines/publish`` and ``engines/unpublish`` bodies: what to (un)publish.

    Versioned kinds without a version mean every version of that name.
    """

    model_config = ConfigDict(extra="ignore")

    attribute_keys: tuple[NameLink, ...] = ()
    attribute_groups: tuple[GroupLink, ...] = ()
    services: tuple[NameLink, ...] = ()
    interventions: tuple[GroupLink, ...] = ()
    event_logs: tuple[NameLink, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _nulls_are_empty(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None}
        return data


class OnlineAttributesRequest(DefinitionModel):
    """``POST get-online-attributes``: ids per attribute key, and either qualified attribute
    names (``group_vN:attribute``) or a service name.

    With several keys, their id lists are rows side by side (Feast's entity rows) and must
    have the same length.
    """

    model_config = ConfigDict(extra="ignore")

    attribute_keys: dict[Name, tuple[_Id, ...]] = Field(min_length=1)
    attributes: tuple[QualifiedAttribute, ...] | None = None
    service: Name | None = None
    full_attribute_names: bool = False

    @model_validator(mode="after")
    def _shape(self) -> OnlineAttributesRequest:
        if (self.attributes is None) == (self.service is None):
            raise ValueError("give exactly one of 'attributes' and 'service'")
        if self.attributes is not None and not self.attributes:
            raise ValueError("attributes: name at least one attribute")
        lengths = {len(ids) for ids in self.attribute_keys.values()}
        if 0 in lengths:
            raise ValueError("attribute_keys: every key needs at least one id")
        if max(lengths) > MAX_IDS:
            raise ValueError(f"attribute_keys: at most {MAX_IDS} ids per key")
        if len(lengths) > 1:
            raise ValueError(
                "attribute_keys: with several keys, give the same number of ids for each "
                "(one row per position)"
            )
        return self

    @property
    def rows(self) -> int:
        return len(next(iter(self.attribute_keys.values())))
