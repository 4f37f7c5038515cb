"""The registry's state: every stored definition, as read back from its log.

Each definition is one record of the registry log (a compacted topic), keyed
``<kind>/<name>/<version>`` (version 0 for unversioned kinds) with a JSON value
``{"body", "published_at_ms", "updated_at_ms"}``; a delete is a tombstone. Every worker folds the
log into a :class:`Registry` and compiles the engine's :class:`~signals_stream.engine.Catalog`
from it, so all workers compute the same thing and a restart loses nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from signals_stream.definitions import BUILTIN_KEYS, AttributeGroup, AttributeKey
from signals_stream.definitions._base import DefinitionModel
from signals_stream.engine import Catalog
from signals_stream.errors import DefinitionError, NotFoundError
from signals_stream.interventions import RuleIntervention
from signals_stream.registry.models import EventLog, Service

__all__ = [
    "KINDS",
    "MODELS",
    "VERSIONED",
    "Entry",
    "Kind",
    "Registry",
    "entry_key",
    "fixed_entries",
]

Kind = Literal["attribute_keys", "attribute_groups", "services", "interventions", "event_logs"]
KINDS: tuple[Kind, ...] = (
    "attribute_keys",
    "attribute_groups",
    "services",
    "interventions",
    "event_logs",
)
VERSIONED: frozenset[str] = frozenset({"attribute_groups", "interventions"})
MODELS: dict[str, type[DefinitionModel]] = {
    "attribute_keys": AttributeKey,
    "attribute_groups": AttributeGroup,
    "services": Service,
    "interventions": RuleIntervention,
    "event_logs": EventLog,
}
# What the API calls each kind in messages.
LABELS = {
    "attribute_keys": "attribute key",
    "attribute_groups": "attribute group",
    "services": "service",
    "interventions": "intervention",
    "event_logs": "event log",
}


def entry_key(kind: str, name: str, version: int = 0) -> bytes:
    """The log key of a definition: ``<kind>/<name>/<version>`` (0 when unversioned)."""
    return f"{kind}/{name}/{version if kind in VERSIONED else 0}".encode()


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored definition.

    Args:
        kind: which collection.
        model: the validated definition (its ``is_published`` is the publish switch).
        published_at_ms: wall clock when it last went from unpublished to published; None
            while unpublished. Attribute state counts from there.
        updated_at_ms: wall clock of the last write.
    """

    kind: Kind
    model: Any
    published_at_ms: int | None
    updated_at_ms: int
    # Where it comes from when not from the log: "built in" (the four standard keys) or "the
    # definitions file" (SIGNALS_DEFINITIONS). Such entries are read-only through the API.
    fixed_by: str | None = field(default=None, compare=False)
    # Event logs only: the published version while a changed draft (``model``, unpublished)
    # waits for ``engines/publish``. The engine runs ``live_model``.
    published_model: Any = None

    @property
    def name(self) -> str:
        return str(self.model.name)

    @property
    def version(self) -> int:
        return int(self.model.version) if self.kind in VERSIONED else 0

    @property
    def is_published(self) -> bool:
        return bool(self.model.is_published)

    @property
    def has_published_version(self) -> bool:
        """Published, or published with a pending draft (event logs' three states: published,
        published with a pending draft, draft only)."""
        return self.is_published or self.published_model is not None

    @property
    def live_model(self) -> Any:
        """What the engine runs: the published version, if any."""
        return self.model if self.is_published else self.published_model

    @property
    def key(self) -> bytes:
        return entry_key(self.kind, self.name, self.version)

    def encode(self) -> bytes:
        published = (
            {}
            if self.published_model is None
            else {"published_body": self.published_model.to_wire()}
        )
        return orjson.dumps(
            {
                "body": self.model.to_wire(),
                "published_at_ms": self.published_at_ms,
                "updated_at_ms": self.updated_at_ms,
                **published,
            }
        )

    @classmethod
    def decode(cls, key: bytes, value: bytes) -> Entry:
        """Read a log record back.

        Raises:
            DefinitionError: the record is not a valid definition (written by another version?).
        """
        kind = key.decode(errors="replace").split("/", 1)[0]
        if kind not in MODELS:
            raise DefinitionError(f"registry record {key!r}: unknown kind {kind!r}")
        try:
            data = orjson.loads(value)
            body = data["body"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise DefinitionError(f"registry record {key!r}: not a registry entry") from exc
        published = data.get("published_body")
        return cls(
            kind=kind,  # type: ignore[arg-type]
            model=MODELS[kind].parse(body),
            published_at_ms=data.get("published_at_ms"),
            updated_at_ms=int(data.get("updated_at_ms") or 0),
            published_model=None if published is None else MODELS[kind].parse(published),
        )


def fixed_entries(
    keys: Iterable[AttributeKey] = (),
    groups: Iterable[AttributeGroup] = (),
    interventions: Iterable[RuleIntervention] = (),
) -> list[Entry]:
    """Entries for definitions loaded from a file: published since forever, read-only."""
    by_kind: list[tuple[Kind, Iterable[Any]]] = [
        ("attribute_keys", keys),
        ("attribute_groups", groups),
        ("interventions", interventions),
    ]
    return [
        Entry(kind, model, published_at_ms=0, updated_at_ms=0, fixed_by="the definitions file")
        for kind, models in by_kind
        for model in models
    ]


class Registry:
    """Every definition, by log key. The four built-in keys and any ``fixed`` entries (the
    definitions file) are always there and cannot be changed through the log."""

    def __init__(self, fixed: Iterable[Entry] = ()) -> None:
        builtins = [
            Entry("attribute_keys", k, published_at_ms=0, updated_at_ms=0, fixed_by="built in")
            for k in BUILTIN_KEYS.values()
        ]
        self._fixed = {e.key: e for e in [*builtins, *fixed]}
        self._entries: dict[bytes, Entry] = dict(self._fixed)

    def apply(self, key: bytes, value: bytes | None) -> None:
        """Fold one log record in (a tombstone deletes).

        Raises:
            DefinitionError: an unreadable record (the caller logs and skips it).
        """
        if key in self._fixed:
            return  # written before the definitions file named it: the file wins
        if value is None:
            self._entries.pop(key, None)
            return
        self._entries[key] = Entry.decode(key, value)

    def put(self, entry: Entry | None, key: bytes | None = None) -> None:
        """Apply a change without encoding it (for trial runs of a command)."""
        if entry is None:
            assert key is not None
            self.apply(key, None)
        elif entry.key not in self._fixed:
            self._entries[entry.key] = entry

    def copy(self) -> Registry:
        other = Registry()
        other._fixed = self._fixed
        other._entries = dict(self._entries)
        return other

    def find(self, kind: str, name: str, version: int | None = None) -> Entry | None:
        """The entry, or the highest version of ``name`` when ``version`` is None."""
        if kind not in VERSIONED:
            return self._entries.get(entry_key(kind, name))
        if version is not None:
            return self._entries.get(entry_key(kind, name, version))
        versions = self.versions(kind, name)
        return versions[-1] if versions else None

    def by_key(self, key: bytes) -> Entry | None:
        return self._entries.get(key)

    def get(self, kind: str, name: str, version: int | None = None) -> Entry:
        """Like :meth:`find`.

        Raises:
            NotFoundError: no such definition.
        """
        entry = self.find(kind, name, version)
        if entry is None:
            which = "" if version is None or kind not in VERSIONED else f" version {version}"
            raise NotFoundError(f"{LABELS[kind]} {name!r}{which} does not exist")
        return entry

    def versions(self, kind: str, name: str) -> list[Entry]:
        return sorted(
            (e for e in self._entries.values() if e.kind == kind and e.name == name),
            key=lambda e: e.version,
        )

    def list(self, kind: str) -> list[Entry]:
        return sorted(
            (e for e in self._entries.values() if e.kind == kind),
            key=lambda e: (e.name, e.version),
        )

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries.values())

    def catalog(
        self, rules: Iterable[RuleIntervention] | None = None, *, since_publication: bool = True
    ) -> Catalog:
        """Compile what the engine runs: published stream groups, rules and event logs (``rules``
        instead of the registry's own, for a preview). Without ``since_publication`` slots
        count from the beginning of time, for folding history written before publication.

        Raises:
            DefinitionError: the published groups cannot run together.
        """
        groups = [e.model for e in self.list("attribute_groups")]
        published_at = {
            (e.name, e.version): e.published_at_ms or 0
            for e in self.list("attribute_groups")
            if e.is_published
        }
        return Catalog.build(
            groups,
            [e.model for e in self.list("attribute_keys")],
            [e.model for e in self.list("interventions")] if rules is None else rules,
            published_at_ms=published_at if since_publication else None,
            event_logs=[e.live_model for e in self.list("event_logs") if e.has_published_version],
        )
