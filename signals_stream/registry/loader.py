"""Load definitions from a file at start-up: YAML, JSON, or a Python module of SDK objects.

Accepted shapes (each item is exactly the JSON body the Signals SDK would publish):

* a mapping with any of ``attribute_keys``, ``attribute_groups``, ``interventions``;
* a list of items, each recognised by its fields (``attributes`` -> group, ``criteria`` ->
  intervention, otherwise an attribute key);
* a ``.py`` file or dotted module name: every module-level SDK object (or list of them) with a
  ``model_dump`` method is taken, in the same way.

Groups and keys in a definitions file are published unless they say ``is_published: false``:
the file is the set of things to run.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from signals_stream.definitions import AttributeGroup, AttributeKey
from signals_stream.engine import Catalog
from signals_stream.errors import DefinitionError
from signals_stream.interventions import RuleIntervention
from signals_stream.registry.entries import Registry, fixed_entries
from signals_stream.settings import Settings

__all__ = ["LoadedDefinitions", "initial_registry", "load_definitions"]

_DATA_SUFFIXES = frozenset({".yaml", ".yml", ".json"})


@dataclass(frozen=True, slots=True)
class LoadedDefinitions:
    keys: tuple[AttributeKey, ...]
    groups: tuple[AttributeGroup, ...]
    interventions: tuple[RuleIntervention, ...]

    def catalog(self) -> Catalog:
        return Catalog.build(self.groups, self.keys, self.interventions)


def load_definitions(source: str | Path, *, resolve: bool = True) -> LoadedDefinitions:
    """Read and validate a definitions file.

    Args:
        resolve: also compile it, so a rule whose groups the file lacks is an error (False:
            a file holding only a rule to preview against the published groups).

    Raises:
        DefinitionError: unreadable file or invalid definition, naming which.
    """
    items = _read_items(source)
    keys: list[AttributeKey] = []
    groups: list[AttributeGroup] = []
    interventions: list[RuleIntervention] = []
    for index, (kind, body) in enumerate(items):
        body = {"is_published": True, **body}
        try:
            if kind == "attribute_groups":
                groups.append(AttributeGroup.parse(body))
            elif kind == "attribute_keys":
                keys.append(AttributeKey.parse(body))
            else:
                interventions.append(RuleIntervention.parse(body))
        except DefinitionError as exc:
            raise DefinitionError(f"{source}: item {index} ({kind}): {exc}") from exc
    loaded = LoadedDefinitions(tuple(keys), tuple(groups), tuple(interventions))
    if not resolve:
        return loaded
    skipped = loaded.catalog().rules.skipped  # compile now: bad definitions fail at start-up
    if skipped:
        name, why = next(iter(skipped.items()))
        raise DefinitionError(f"{source}: intervention {name} cannot be evaluated: {why}")
    return loaded


def _read_items(source: str | Path) -> list[tuple[str, dict[str, Any]]]:
    path = Path(source)
    is_module_name = (
        not path.exists() and path.suffix not in _DATA_SUFFIXES and "/" not in str(source)
    )
    if path.suffix == ".py" or is_module_name:
        return _classify(_module_objects(source))
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise DefinitionError(f"cannot read definitions file {source}: {exc}") from exc
    try:
        data = orjson.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise DefinitionError(
            f"{source}: not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}"
        ) from exc
    if isinstance(data, dict):
        unknown = set(data) - {"attribute_keys", "attribute_groups", "interventions"}
        if unknown:
            raise DefinitionError(f"{source}: unknown sections {sorted(unknown)}")
        return [
            (kind, _as_dict(item, source)) for kind, items in data.items() for item in items or ()
        ]
    if isinstance(data, list):
        return _classify(data)
    raise DefinitionError(f"{source}: expected a mapping or a list of definitions")


def _classify(items: Iterable[Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for item in items:
        body = _as_dict(item, "definitions")
        if "attributes" in body or "fields" in body:
            out.append(("attribute_groups", body))
        elif "criteria" in body:
            out.append(("interventions", body))
        else:
            out.append(("attribute_keys", body))
    return out


def _as_dict(item: Any, source: object) -> dict[str, Any]:
    if hasattr(item, "model_dump"):
        item = item.model_dump(mode="json", exclude_none=True)
    if not isinstance(item, dict):
        raise DefinitionError(
            f"{source}: every definition must be an object, got {type(item).__name__}"
        )
    return item


def _module_objects(source: str | Path) -> list[Any]:
    try:
        if str(source).endswith(".py"):
            spec = importlib.util.spec_from_file_location("signals_definitions", source)
            if spec is None or spec.loader is None:
                raise DefinitionError(f"cannot import {source}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(str(source))
    except DefinitionError:
        raise
    except Exception as exc:  # user code: any import failure is a definitions error
        raise DefinitionError(f"cannot import definitions module {source}: {exc}") from exc
    found: list[Any] = []
    for name, value in vars(module).items():
        if name.startswith("_"):
            continue
        candidates = value if isinstance(value, list | tuple) else [value]
        found += [c for c in candidates if hasattr(c, "model_dump") and not isinstance(c, type)]
    return found


def initial_registry(settings: Settings) -> Registry:
    """The registry before its log is read: built-in keys plus the definitions file
    (``SIGNALS_DEFINITIONS``), as every worker and ``signals-stream api`` start.

    Raises:
        DefinitionError: the definitions file is invalid (the message names the item).
    """
    if settings.definitions is None:
        return Registry()
    loaded = load_definitions(settings.definitions)
    return Registry(fixed_entries(loaded.keys, loaded.groups, loaded.interventions))
