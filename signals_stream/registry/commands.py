"""Registry commands: validate a request against the current registry and return the log
records to write. Pure: no I/O, the clock is an argument.

The rules (Signals' registry, see docs/api.md):

* POST to a collection creates; an existing name (and version) is HTTP 400, because the SDK
  then retries with PUT. PUT replaces (creating when absent).
* ``is_published`` on a body publishes or unpublishes that version; event logs ignore it
  (``engines/publish`` switches them, as the SDK expects).
* Groups embed their attribute key: a registered key (built-ins always are) is used as is; an
  unregistered one that says where its id comes from is registered with the group.
* Services pin existing group versions; interventions name groups unversioned.
* Publishing must leave a runnable catalog (422 otherwise); unpublishing or deleting a group
  version that a published intervention needs unpublishes that intervention too.
* Deleting needs the definition unpublished (409 otherwise); groups pinned by a service and
  keys used by a group cannot be deleted; built-in keys never.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from signals_stream.definitions import AttributeGroup, AttributeKey
from signals_stream.errors import AlreadyExists, Conflict, DefinitionError
from signals_stream.interventions import RuleIntervention
from signals_stream.registry.entries import (
    LABELS,
    MODELS,
    VERSIONED,
    Entry,
    Kind,
    Registry,
)
from signals_stream.registry.models import PublishSelection, Service

__all__ = [
    "AlreadyExists",
    "Change",
    "Conflict",
    "create",
    "delete",
    "set_batch_source",
    "set_published",
    "update",
]


@dataclass(frozen=True, slots=True)
class Change:
    """One log record to write: ``entry`` None deletes ``key``."""

    key: bytes
    entry: Entry | None

    def value(self) -> bytes | None:
        return None if self.entry is None else self.entry.encode()


def create(registry: Registry, kind: Kind, body: Any, now_ms: int) -> tuple[Entry, list[Change]]:
    """POST ``registry/<kind>/``.

    Returns:
        The stored entry (echoed to the client) and the records to write.

    Raises:
        DefinitionError: invalid body or a definition that cannot run (422).
        AlreadyExists: that name (and version) exists (400).
    """
    model = _parse(kind, body)
    if registry.find(kind, model.name, _version(kind, model)) is not None:
        which = f" version {model.version}" if kind in VERSIONED else ""
        raise AlreadyExists(f"{LABELS[kind]} {model.name!r}{which} already exists")
    return _store(registry, kind, model, now_ms)


def update(
    registry: Registry, kind: Kind, name: str, version: int | None, body: Any, now_ms: int
) -> tuple[Entry, list[Change]]:
    """PUT ``registry/<kind>/<name>[/versions/<version>]``: replace (or create) it.

    Raises:
        DefinitionError: invalid body, or the body names another definition than the path.
    """
    model = _parse(kind, body)
    if model.name != name or (
        kind in VERSIONED and version is not None and model.version != version
    ):
        where = f"{name}" + (f" version {version}" if kind in VERSIONED else "")
        raise DefinitionError(
            f"the body describes {model.name!r}"
            + (f" version {model.version}" if kind in VERSIONED else "")
            + f" but the path names {where!r}"
        )
    return _store(registry, kind, model, now_ms)


def delete(
    registry: Registry, kind: Kind, name: str, version: int | None, now_ms: int
) -> list[Change]:
    """DELETE ``registry/<kind>/<name>[/versions/<version>]``.

    Raises:
        NotFoundError: no such definition.
        Conflict: still published, still used, or built in.
    """
    entry = registry.get(kind, name, version)
    label = f"{LABELS[kind]} {name!r}" + (f" version {entry.version}" if kind in VERSIONED else "")
    if entry.fixed_by is not None:
        raise Conflict(f"{label} is {_fixed(entry)} and cannot be deleted")
    if entry.has_published_version and kind in ("attribute_groups", "interventions", "event_logs"):
        raise Conflict(f"{label} is published: unpublish it before deleting it")
    if kind == "attribute_groups":
        for service in registry.list("services"):
            if any(
                link.name == name and link.version == entry.version
                for link in service.model.attribute_groups
            ):
                raise Conflict(f"{label} is pinned by service {service.name!r}")
    if kind == "attribute_keys":
        for group in registry.list("attribute_groups"):
            if group.model.attribute_key.name == name:
                raise Conflict(f"{label} is used by attribute group {group.model.full_name!r}")
        for log in registry.list("event_logs"):
            if log.model.attribute_key.name == name:
                raise Conflict(f"{label} is used by event log {log.name!r}")
    changes = [Change(entry.key, None)]
    trial = registry.copy()
    trial.put(None, entry.key)
    return changes + _cascade(trial, now_ms)


def set_batch_source(
    registry: Registry, name: str, version: int, body: Any, now_ms: int
) -> tuple[Entry, list[Change]]:
    """``PUT registry/attribute_groups/<name>/versions/<version>/batch_source``: the SDK's batch
    tooling registers the table a group version is synced from (publishing stays a separate
    ``engines/publish``). The body is a ``BatchSource``; the tooling's ``wh_schema`` spelling
    is read as ``schema``, its other extras (``created_timestamp_column``, ``tags``) are kept.

    Raises:
        NotFoundError: no such group version.
        DefinitionError: not a batch source (422 naming the field), or a stream group.
    """
    entry = registry.get("attribute_groups", name, version)
    if not isinstance(body, Mapping):
        raise DefinitionError("the body must be a JSON object describing a batch source")
    source = dict(body)
    if "schema" not in source and "wh_schema" in source:
        source["schema"] = source.pop("wh_schema")
    group = entry.model
    wire = {**group.to_wire(), "batch_source": source}
    if not group.offline:
        raise DefinitionError(
            f"batch_source: attribute group {group.full_name} is a stream group (offline=false)"
        )
    model = MODELS["attribute_groups"].parse(wire)
    return _store(registry, "attribute_groups", model, now_ms)


def set_published(
    registry: Registry, selection: PublishSelection, published: bool, now_ms: int
) -> list[Change]:
    """``engines/publish`` / ``engines/unpublish``: switch the selected definitions.

    Each reference names one definition (a versioned reference without a version means 1).

    Raises:
        NotFoundError: a selected definition does not exist.
        DefinitionError: publishing would leave definitions that cannot run.
    """
    targets: list[Entry] = []
    picks: list[tuple[Kind, str, int | None]] = [
        *(("attribute_keys", k.name, None) for k in selection.attribute_keys),
        *(("attribute_groups", g.name, g.version) for g in selection.attribute_groups),
        *(("services", s.name, None) for s in selection.services),
        *(("interventions", i.name, i.version) for i in selection.interventions),
        *(("event_logs", e.name, None) for e in selection.event_logs),
    ]
    for kind, name, version in picks:
        targets.append(registry.get(kind, name, version))
    trial = registry.copy()
    changes = []
    for entry in targets:
        # An event log with a pending draft is still published: unpublishing takes it down.
        current = entry.has_published_version if not published else entry.is_published
        if current == published:
            continue
        if entry.fixed_by is not None:
            raise Conflict(f"{LABELS[entry.kind]} {entry.name!r} is {_fixed(entry)}")
        switched = _with_published(entry, published, now_ms)
        trial.put(switched)
        changes.append(Change(switched.key, switched))
    if not changes:
        return []
    _check_runnable(trial, {(c.entry.kind, c.key) for c in changes if c.entry is not None})
    return changes + _cascade(trial, now_ms)


# --- internals ------------------------------------------------------------------------------


def _parse(kind: Kind, body: Any) -> Any:
    if not isinstance(body, Mapping):
        raise DefinitionError(f"the body must be a JSON object describing a {LABELS[kind]}")
    return MODELS[kind].parse(body)


def _version(kind: str, model: Any) -> int | None:
    return int(model.version) if kind in VERSIONED else None


def _store(registry: Registry, kind: Kind, model: Any, now_ms: int) -> tuple[Entry, list[Change]]:
    previous = registry.find(kind, model.name, _version(kind, model))
    if previous is not None and previous.fixed_by == "the definitions file":
        raise Conflict(f"{LABELS[kind]} {model.name!r} is {_fixed(previous)}; change it there")
    if kind == "event_logs" and previous is not None:
        return _store_event_log_draft(registry, model, previous, now_ms)
    if previous is not None and previous.fixed_by == "built in":
        # Publishing a built-in key (the SDK does when it is in the list) changes nothing.
        if model.source != previous.model.source:
            raise DefinitionError(
                f"attribute key {model.name!r} is built in: its id source cannot change"
            )
        return Entry(kind, model, published_at_ms=0, updated_at_ms=now_ms), []
    trial = registry.copy()
    changes: list[Change] = []
    if kind == "attribute_groups":
        changes += _register_embedded_key(trial, model, now_ms)
    if kind == "services":
        _check_pins(trial, model)
    if kind == "interventions" and model.is_published:
        for group in _referenced_groups(model):
            if not trial.versions("attribute_groups", group):
                raise DefinitionError(f"criteria: attribute group {group!r} does not exist")
    entry = _new_entry(kind, model, previous, now_ms)
    trial.put(entry)
    changes.append(Change(entry.key, entry))
    _check_runnable(trial, {(kind, entry.key)} if entry.is_published else set())
    return entry, changes + _cascade(trial, now_ms)


def _store_event_log_draft(
    registry: Registry, model: Any, previous: Entry, now_ms: int
) -> tuple[Entry, list[Change]]:
    """A write to an existing event log is a draft: the published version (if any) stays live
    until ``engines/publish``; a draft equal to it is simply the published version again."""
    live = previous.live_model
    draft = model.model_copy(update={"is_published": False})
    if live is None:
        entry = Entry("event_logs", draft, published_at_ms=None, updated_at_ms=now_ms)
    elif draft.to_wire() == live.model_copy(update={"is_published": False}).to_wire():
        entry = Entry("event_logs", live, previous.published_at_ms, updated_at_ms=now_ms)
    else:
        entry = Entry(
            "event_logs",
            draft,
            published_at_ms=previous.published_at_ms,
            updated_at_ms=now_ms,
            published_model=live,
        )
    trial = registry.copy()
    trial.put(entry)
    return entry, [Change(entry.key, entry), *_cascade(trial, now_ms)]


def _fixed(entry: Entry) -> str:
    if entry.fixed_by == "built in":
        return "built in"
    return "defined in the definitions file (SIGNALS_DEFINITIONS)"


def _new_entry(kind: Kind, model: Any, previous: Entry | None, now_ms: int) -> Entry:
    published_at = None
    if model.is_published:
        was = previous is not None and previous.is_published
        published_at = previous.published_at_ms if was and previous else now_ms
        if was and previous and _new_backfill(kind, previous.model, model):
            # A published group given another backfill range is filled again from then: a new
            # publication (its slots' old state is stale, engine.backfill fills them anew).
            published_at = now_ms
    return Entry(kind, model, published_at_ms=published_at, updated_at_ms=now_ms)


def _new_backfill(kind: Kind, before: Any, after: Any) -> bool:
    fields = ("backfill_since_tstamp", "backfill_until_tstamp")
    return (
        kind == "attribute_groups"
        and after.kind == "stream"
        and after.backfill_since_tstamp is not None
        and any(getattr(after, f, None) != getattr(before, f, None) for f in fields)
    )


def _with_published(entry: Entry, published: bool, now_ms: int) -> Entry:
    model = entry.model.model_copy(update={"is_published": published})
    return Entry(
        entry.kind,
        model,
        published_at_ms=now_ms if published else None,
        updated_at_ms=now_ms,
    )


def _register_embedded_key(trial: Registry, group: AttributeGroup, now_ms: int) -> list[Change]:
    embedded = group.attribute_key
    if trial.find("attribute_keys", embedded.name) is not None:
        return []
    if embedded.source is None and embedded.external_column is None:
        raise DefinitionError(
            f"attribute_key: {embedded.name!r} is not registered; publish the attribute key "
            "first or embed it with its property"
        )
    key = AttributeKey.parse({**embedded.to_wire(), "is_published": group.is_published})
    entry = Entry("attribute_keys", key, published_at_ms=now_ms, updated_at_ms=now_ms)
    trial.put(entry)
    return [Change(entry.key, entry)]


def _check_pins(trial: Registry, service: Service) -> None:
    for index, link in enumerate(service.attribute_groups):
        if trial.find("attribute_groups", link.name, link.version) is None:
            raise DefinitionError(
                f"attribute_groups.{index}: attribute group {link.name!r} version "
                f"{link.version} does not exist"
            )


def _referenced_groups(rule: RuleIntervention) -> set[str]:
    return {ref.split(":", 1)[0] for ref in rule.attributes}


def _check_runnable(trial: Registry, switched_on: set[tuple[str, bytes]]) -> None:
    """Compile the trial registry; the definitions being published must be part of it."""
    catalog = trial.catalog()  # DefinitionError: groups that cannot run together
    for kind, key in switched_on:
        if kind != "interventions":
            continue
        entry = trial.by_key(key)
        why = None if entry is None else catalog.rules.skipped.get(entry.model.key)
        if why is not None:
            raise DefinitionError(f"intervention {entry.model.key}: {why}")  # type: ignore[union-attr]


def _cascade(trial: Registry, now_ms: int) -> list[Change]:
    """Unpublish published interventions that no longer resolve against published groups."""
    try:
        skipped = trial.catalog().rules.skipped
    except DefinitionError:
        return []
    changes = []
    for entry in trial.list("interventions"):
        if entry.is_published and entry.model.key in skipped:
            switched = _with_published(entry, False, now_ms)
            trial.put(switched)
            changes.append(Change(switched.key, switched))
    return changes
