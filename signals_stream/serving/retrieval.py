"""Attribute retrieval, pure: which columns a ``get-online-attributes`` request asks for, and
the columnar answer from entity rows read at ``now_ms``. Workers (``api/attributes.py``) and
any other reader of rows share it, so values are the same wherever they are served."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from signals_stream.engine import Catalog
from signals_stream.engine.catalog import PublishedGroup, ReadableAttribute
from signals_stream.engine.read import read_value
from signals_stream.engine.row import EntityRow
from signals_stream.engine.synced import SyncedField, SyncedGroup
from signals_stream.errors import DefinitionError, NotFoundError
from signals_stream.registry import OnlineAttributesRequest, Registry

__all__ = ["Column", "EntityRef", "answer", "needed_rows", "resolve_columns"]

EntityRef = tuple[str, str]  # (attribute key name, id)


@dataclass(frozen=True, slots=True)
class Column:
    """One response column: which attribute, read for which key's ids."""

    name: str
    key_name: str
    attribute: ReadableAttribute | SyncedField


def resolve_columns(
    request: OnlineAttributesRequest, catalog: Catalog, registry: Registry
) -> list[Column]:
    """The requested attributes, in order, as columns.

    Raises:
        NotFoundError: unknown service, group version not published, unknown attribute.
        DefinitionError: an attribute's key has no ids in the request.
    """
    wanted: list[tuple[PublishedGroup | SyncedGroup, str]] = []
    if request.service is not None:
        service = registry.get("services", request.service).model
        groups = [catalog.readable(link.name, link.version) for link in service.attribute_groups]
        keyed = [g for g in groups if g.key_name in request.attribute_keys]
        if not keyed:
            keys = sorted({g.key_name for g in groups})
            raise DefinitionError(
                f"attribute_keys: service {service.name!r} serves keys {', '.join(keys)}; "
                "give ids for one of them"
            )
        wanted = [(g, name) for g in keyed for name in g.attribute_names]
    else:
        for qualified in request.attributes or ():
            full_name, attribute = qualified.split(":", 1)
            name, _, version = full_name.rpartition("_v")
            group = catalog.readable(name, int(version))
            if attribute not in group.attribute_names:
                raise NotFoundError(f"attribute group {full_name} has no attribute {attribute!r}")
            if group.key_name not in request.attribute_keys:
                raise DefinitionError(
                    f"attributes: {qualified} is computed per {group.key_name}; "
                    f"give its ids under attribute_keys.{group.key_name}"
                )
            wanted.append((group, attribute))
    columns: dict[str, Column] = {}
    for group, attribute in wanted:
        label = (
            f"{group.definition.full_name}:{attribute}"
            if request.full_attribute_names
            else attribute
        )
        # Bare names can collide across groups: the first one asked for wins.
        columns.setdefault(label, Column(label, group.key_name, group.attribute(attribute)))
    return list(columns.values())


def needed_rows(request: OnlineAttributesRequest, columns: list[Column]) -> set[EntityRef]:
    """The entity rows the columns read."""
    return {
        (column.key_name, entity_id)
        for column in columns
        for entity_id in request.attribute_keys[column.key_name]
    }


def answer(
    request: OnlineAttributesRequest,
    columns: list[Column],
    rows: Mapping[EntityRef, EntityRow | None],
    now_ms: int,
) -> dict[str, list[Any]]:
    """The columnar body: each key's ids, then one list per column aligned with them."""
    body: dict[str, list[Any]] = {k: list(ids) for k, ids in request.attribute_keys.items()}
    for column in columns:
        body[column.name] = [
            read_value(rows.get((column.key_name, entity_id)), column.attribute, now_ms)
            for entity_id in request.attribute_keys[column.key_name]
        ]
    return body
