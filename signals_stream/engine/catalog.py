"""The catalog: what the engine computes right now, compiled from the published groups.

One :class:`KeyProgram` per attribute key in use. Its :class:`Slot` s are the distinct states to
keep for an entity of that key: attributes with the same definition hash (in different groups
or group versions) share one slot, as Signals shares state by ``definition_hash``. A slot is
kept as long as its longest-lived reader needs it (the largest effective TTL of the attributes
that read it; unlimited if any reader has none).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, NamedTuple

from signals_stream.aggregations import get_reducer
from signals_stream.definitions import (
    BUILTIN_KEYS,
    AttributeGroup,
    AttributeKey,
    CompiledAttribute,
    CompiledGroup,
    CompiledKey,
    NeededFields,
    compile_group,
)
from signals_stream.definitions.compiled import no_value
from signals_stream.definitions.criteria import Predicate, always
from signals_stream.definitions.durations import duration_ms
from signals_stream.definitions.evaluate import Getter
from signals_stream.definitions.event_logs import CompiledEventLog, EventLog, compile_event_log
from signals_stream.engine.synced import SyncedGroup
from signals_stream.engine.windows import Window, effective_ttl, window_for
from signals_stream.errors import DefinitionError, NotFoundError
from signals_stream.events.parse import Event, Projection
from signals_stream.interventions import RuleIndex, RuleIntervention, build_index
from signals_stream.routing import KeyRoute, RoutingPlan

__all__ = [
    "Backfill",
    "Catalog",
    "FoldStep",
    "backfill_id",
    "KeyProgram",
    "PublishedGroup",
    "ReadableAttribute",
    "Slot",
    "slot_id",
]


_NO_MARKS: Mapping[str, object] = {}


def slot_id(attribute: CompiledAttribute, window: Window) -> str:
    """Row key of a state: the definition hash plus the stored layout's version."""
    return f"{attribute.definition_hash}:{window.state_suffix}"


@dataclass(frozen=True, slots=True)
class Slot:
    """One state kept per entity, updated by every event its attribute accepts."""

    id: str
    attribute: CompiledAttribute
    window: Window
    retention_ms: int | None
    skips_none: bool
    # Wall-clock ms since which the slot has been read by a published group without a break
    # (0: always). State written before it belongs to an earlier publication and is ignored, so
    # deleting or unpublishing a group and publishing it again starts from nothing.
    since_ms: int = 0
    # The backfill filling this slot (``Backfill.id``), if any. Its state is folded on event
    # time, so its update time can predate the publication: a row that the backfill's roads
    # have reached (its ``backfills`` marks hold the id) is this publication's, whatever the
    # time (``engine.backfill`` dropped the earlier state when it first reached the row).
    backfill: str | None = None

    def stale(self, updated_ms: int, marks: Mapping[str, object] = _NO_MARKS) -> bool:
        """True when a state last written at ``updated_ms`` predates this publication
        (``marks``: the row's ``backfills``)."""
        if self.backfill is not None and self.backfill in marks:
            return False
        return updated_ms < self.since_ms


_IDENTITY_CACHE_LIMIT = 4096  # identities are few; bounded against junk input


class FoldStep(NamedTuple):
    """One slot's update, specialised for the events of one identity (``engine.fold``).

    Flattened from the slot so the fold does no attribute lookups and no per-attribute
    dispatch: the checks an attribute does not need are ``None``.
    """

    slot_id: str
    windowed: bool  # a rolling window: events from the future are kept out
    select: Predicate | None  # event-specification selectors, run per event; None: selected
    criteria: Predicate | None  # None: no criteria
    value: Getter | None  # None: the reducer takes no value (``counter``)
    skips_none: bool
    add: Any  # Window.add
    initial: Any  # Window.initial
    retention_ms: int | None
    since_ms: int
    backfill: str | None  # ``Slot.backfill``: see ``Slot.stale``


def _fold_step(slot: Slot) -> FoldStep:
    attribute = slot.attribute
    return FoldStep(
        slot_id=slot.id,
        windowed=attribute.period_ms is not None,
        select=None if attribute.selects_by_identity else attribute.matches_event,
        criteria=None if attribute.passes_criteria is always else attribute.passes_criteria,
        value=None if attribute.value is no_value else attribute.value,
        skips_none=slot.skips_none,
        add=slot.window.add,
        initial=slot.window.initial,
        retention_ms=slot.retention_ms,
        since_ms=slot.since_ms,
        backfill=slot.backfill,
    )


@dataclass(frozen=True, slots=True)
class KeyProgram:
    """Everything computed for entities of one attribute key."""

    key: CompiledKey
    slots: tuple[Slot, ...]
    # (vendor, name, version) -> the slots whose selectors pick that identity, filled lazily.
    _by_identity: dict[tuple[str | None, str | None, str | None], tuple[Slot, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    # The same, as the fold runs them (``steps``).
    _steps: dict[tuple[str | None, str | None, str | None], tuple[FoldStep, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    _slot_by_id: dict[str, Slot] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def slot_by_id(self) -> dict[str, Slot]:
        """The slots by id (built once)."""
        if not self._slot_by_id and self.slots:
            self._slot_by_id.update((slot.id, slot) for slot in self.slots)
        return self._slot_by_id

    def steps(self, event: Event) -> tuple[FoldStep, ...]:
        """:meth:`candidates` compiled for the fold, decided once per identity."""
        identity = (event.event_vendor, event.event_name, event.event_version)
        found = self._steps.get(identity)
        if found is None:
            if len(self._steps) >= _IDENTITY_CACHE_LIMIT:
                self._steps.clear()
            found = self._steps[identity] = tuple(map(_fold_step, self.candidates(event)))
        return found

    def candidates(self, event: Event) -> tuple[Slot, ...]:
        """The slots that may accept ``event``: those its identity selects (decided once per
        identity), and those selecting by event specification (their selectors still have to
        run per event; criteria always do)."""
        identity = (event.event_vendor, event.event_name, event.event_version)
        found = self._by_identity.get(identity)
        if found is None:
            if len(self._by_identity) >= _IDENTITY_CACHE_LIMIT:
                self._by_identity.clear()
            found = self._by_identity[identity] = tuple(
                slot
                for slot in self.slots
                if not slot.attribute.selects_by_identity or slot.attribute.matches_event(event)
            )
        return found


def backfill_id(group: str, version: int, published_at_ms: int) -> str:
    """One backfill per publication: re-publishing starts a new one (old state is stale)."""
    return f"{group}:{version}:{published_at_ms}"


@dataclass(frozen=True, slots=True)
class Backfill:
    """A published group's backfill (``engine.backfill``): which slots it fills, from when.

    Attributes:
        id: :func:`backfill_id`.
        since_ms: the group's ``backfill_since_tstamp``: records stamped from then on are read.
        program: the key's program restricted to the slots this group is the first reader of.
        until_ms: the group's ``backfill_until_tstamp`` (a range backfill): each input
            partition is read from its first record stamped at ``since_ms`` up to, not
            including, its first record stamped at ``until_ms`` (an offset range, every
            record in it taken); None: up to the live road.
    """

    id: str
    group: str
    version: int
    since_ms: int
    published_at_ms: int
    program: KeyProgram
    until_ms: int | None = None

    @property
    def key_name(self) -> str:
        return self.program.key.name

    @property
    def slot_ids(self) -> frozenset[str]:
        return frozenset(slot.id for slot in self.program.slots)

    def routing_plan(self) -> RoutingPlan:
        """How the backfill road routes a record: this key only, what its slots read."""
        key = self.program.key
        needs = NeededFields.union([key.needs, *(s.attribute.needs for s in self.program.slots)])
        return RoutingPlan(
            keys=(KeyRoute(name=key.name, value_of=key.key_value),),
            projection=Projection(
                atomic=needs.atomic, entity_keys=needs.entities, unstruct_keys=needs.unstruct
            ),
        )


@dataclass(frozen=True, slots=True)
class ReadableAttribute:
    """One attribute of a published group, as read: its slot and its own TTL and default."""

    name: str
    slot: Slot
    ttl_ms: int | None
    default_value: Any
    has_default: bool
    time_unit: str | None = None  # per reader: time_unit is not part of the shared state


@dataclass(frozen=True, slots=True)
class PublishedGroup:
    """A published stream group version, compiled."""

    definition: AttributeGroup
    compiled: CompiledGroup
    attributes: tuple[ReadableAttribute, ...]

    @property
    def key_name(self) -> str:
        return self.compiled.key.name

    @property
    def attribute_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.attributes)

    def attribute(self, name: str) -> ReadableAttribute:
        for attribute in self.attributes:
            if attribute.name == name:
                return attribute
        raise KeyError(name)


@dataclass(frozen=True)
class Catalog:
    """The compiled set of published groups. Immutable: a change builds a new catalog."""

    groups: Mapping[tuple[str, int], PublishedGroup] = field(default_factory=dict)
    programs: Mapping[str, KeyProgram] = field(default_factory=dict)
    rules: RuleIndex = field(default_factory=lambda: build_index((), {}))
    # Published event logs by name, and by attribute key name -> {log name: log}.
    event_logs: Mapping[str, CompiledEventLog] = field(default_factory=dict)
    logs_by_key: Mapping[str, Mapping[str, CompiledEventLog]] = field(default_factory=dict)

    # Published warehouse groups (external batch, and batch groups once `batch run` wrote
    # their table): synced, not computed by the stream (engine.synced).
    synced: Mapping[tuple[str, int], SyncedGroup] = field(default_factory=dict)

    # Backfills of published groups, by id (engine.backfill), and by attribute key name.
    backfills: Mapping[str, Backfill] = field(default_factory=dict)

    @cached_property
    def backfills_by_key(self) -> dict[str, tuple[Backfill, ...]]:
        found: dict[str, list[Backfill]] = {}
        for backfill in self.backfills.values():
            found.setdefault(backfill.key_name, []).append(backfill)
        return {key: tuple(found[key]) for key in found}

    @cached_property
    def steady_programs(self) -> dict[str, KeyProgram]:
        """Per key with backfills: its program without the backfilled slots (those take live
        events only as ``engine.backfill.admit_live`` decides)."""
        found: dict[str, KeyProgram] = {}
        for key, backfills in self.backfills_by_key.items():
            filled = frozenset().union(*(b.slot_ids for b in backfills))
            program = self.programs[key]
            found[key] = KeyProgram(
                key=program.key, slots=tuple(s for s in program.slots if s.id not in filled)
            )
        return found

    @cached_property  # every step of a watched row asks, twice
    def watched_attributes(self) -> dict[str, tuple[tuple[str, ReadableAttribute], ...]]:
        """Per attribute key: ``(group:attribute, the attribute as read)`` of every attribute
        a rule on its entities reads (``engine.rules.watched_values``), resolved once."""
        found: dict[str, tuple[tuple[str, ReadableAttribute], ...]] = {}
        for key_name in self.rules.by_key:
            pairs = []
            for name in sorted(self.rules.watched(key_name)):
                ref = self.rules.reference(name)
                group = None if ref is None else self.groups.get((ref.group, ref.version))
                if ref is not None and group is not None:
                    pairs.append((name, group.attribute(ref.attribute)))
            found[key_name] = tuple(pairs)
        return found

    @cached_property
    def watched_programs(self) -> dict[str, KeyProgram]:
        """Per attribute key with rules: its program restricted to the slots rules read.
        Slots fold independently, so folding only these gives the watched values exactly
        (``engine.rules.first_triggers`` re-folds with it)."""
        found: dict[str, KeyProgram] = {}
        for key_name, pairs in self.watched_attributes.items():
            program = self.programs.get(key_name)
            if program is not None:
                read = {attribute.slot.id for _, attribute in pairs}
                found[key_name] = KeyProgram(
                    key=program.key, slots=tuple(s for s in program.slots if s.id in read)
                )
        return found

    @cached_property  # the sweep asks per row
    def synced_ttls(self) -> dict[str, int]:
        """``group_id`` -> TTL of every published warehouse group (for expiry)."""
        return {
            field.group: field.ttl_ms
            for group in self.synced.values()
            for field in group.fields[:1]
        }

    @classmethod
    def build(
        cls,
        groups: Iterable[AttributeGroup],
        keys: Iterable[AttributeKey] = (),
        rules: Iterable[RuleIntervention] = (),
        *,
        published_at_ms: Mapping[tuple[str, int], int] | None = None,
        event_logs: Iterable[EventLog] = (),
    ) -> Catalog:
        """Compile the *published stream* groups among ``groups``, and index the published
        ``rules`` against them (unresolvable rules are listed in ``catalog.rules.skipped``).

        Group keys given by name only are resolved against ``keys`` and the built-ins.
        ``published_at_ms`` gives when each group version was last published (the registry
        knows; a definitions file does not): a slot counts from its earliest live reader's.
        The published ``event_logs`` are compiled against the same keys.

        Raises:
            DefinitionError: a group's key cannot be resolved or compiled.
        """
        groups = list(groups)  # read twice: stream groups, then warehouse groups
        known_keys = {**BUILTIN_KEYS, **{k.name: k for k in keys}}
        compiled_groups = [
            (resolved, compile_group(resolved))
            for resolved in (
                _with_resolved_key(g, known_keys)
                for g in groups
                if g.is_published and g.kind == "stream"
            )
        ]
        _check_one_source_per_key(compiled_groups)
        # Every reader of every slot: (its TTL, the compiled attribute, its key).
        readers: dict[str, list[tuple[int | None, CompiledAttribute, CompiledKey]]] = {}
        since: dict[str, int] = {}
        for group, compiled in compiled_groups:
            published_ms = (published_at_ms or {}).get((group.name, group.version), 0)
            for attribute, definition in zip(
                compiled.attributes, group.attributes or (), strict=True
            ):
                sid = slot_id(attribute, _window(attribute))
                readers.setdefault(sid, []).append(
                    (_ttl_ms(group, definition), attribute, compiled.key)
                )
                since[sid] = min(since.get(sid, published_ms), published_ms)
        slots = {sid: _slot(sid, attrs, since[sid]) for sid, attrs in readers.items()}
        backfills = _backfills(compiled_groups, slots, published_at_ms or {})
        programs: dict[str, list[Slot]] = {}
        keys_by_name: dict[str, CompiledKey] = {}
        for sid, attrs in readers.items():
            key = attrs[0][2]
            keys_by_name.setdefault(key.name, key)
            programs.setdefault(key.name, []).append(slots[sid])
        published = {
            (group.name, group.version): PublishedGroup(
                definition=group,
                compiled=compiled,
                attributes=tuple(
                    ReadableAttribute(
                        name=definition.name,
                        slot=slots[slot_id(attribute, _window(attribute))],
                        ttl_ms=_ttl_ms(group, definition),
                        default_value=definition.default_value,
                        # An explicit null (as GET responses echo it) means "no default".
                        has_default=definition.default_value is not None,
                        time_unit=definition.time_unit,
                    )
                    for attribute, definition in zip(
                        compiled.attributes, group.attributes or (), strict=True
                    )
                ),
            )
            for group, compiled in compiled_groups
        }
        logs = {log.name: _compile_log(log, known_keys) for log in event_logs if log.is_published}
        logs_by_key: dict[str, dict[str, CompiledEventLog]] = {}
        for compiled_log in logs.values():
            logs_by_key.setdefault(compiled_log.key.name, {})[compiled_log.name] = compiled_log
        return cls(
            event_logs=logs,
            logs_by_key=logs_by_key,
            groups=published,
            programs={
                name: KeyProgram(key=keys_by_name[name], slots=tuple(s))
                for name, s in programs.items()
            },
            rules=build_index(rules, published),
            backfills=backfills,
            synced={
                (g.name, g.version): SyncedGroup.of(g)
                for g in groups
                if g.is_published and g.kind in ("external_batch", "batch")
            },
        )

    def group(self, name: str, version: int | None = None) -> PublishedGroup:
        """A published group version; the latest published one when ``version`` is None.

        Raises:
            NotFoundError: no such published group (version).
        """
        if version is not None:
            found = self.groups.get((name, version))
            if found is None:
                raise NotFoundError(f"attribute group {name!r} version {version} is not published")
            return found
        versions = [v for (n, v) in self.groups if n == name]
        if not versions:
            raise NotFoundError(f"attribute group {name!r} is not published")
        return self.groups[(name, max(versions))]

    def event_log(self, name: str) -> CompiledEventLog:
        """A published event log.

        Raises:
            NotFoundError: no such published event log.
        """
        found = self.event_logs.get(name)
        if found is None:
            raise NotFoundError(f"event log {name!r} is not published")
        return found

    @property
    def computes(self) -> bool:
        """True when something is published that the stream computes."""
        return bool(self.programs or self.event_logs)

    def readable(self, name: str, version: int | None = None) -> PublishedGroup | SyncedGroup:
        """A published stream or warehouse group version (the latest when ``version`` is
        None), for reads.

        Raises:
            NotFoundError: no such published group (version).
        """
        versions = [v for (n, v) in self.synced if n == name]
        if version is None and versions:
            stream = [v for (n, v) in self.groups if n == name]
            if not stream or max(versions) > max(stream):
                return self.synced[(name, max(versions))]
        if version is not None and (name, version) in self.synced:
            return self.synced[(name, version)]
        return self.group(name, version)

    def routing_plan(self) -> RoutingPlan:
        """Keys to re-key by and the fields their programs and event logs read."""
        routes = {p.key.name: p.key.key_value for p in self.programs.values()}
        for log in self.event_logs.values():
            routes.setdefault(log.key.name, log.key.key_value)
        keys = tuple(KeyRoute(name=name, value_of=value_of) for name, value_of in routes.items())
        needs = NeededFields.union(
            [p.key.needs for p in self.programs.values()]
            + [s.attribute.needs for p in self.programs.values() for s in p.slots]
            + [log.needs for log in self.event_logs.values()]
        )
        return RoutingPlan(
            keys=keys,
            projection=Projection(
                atomic=needs.atomic,
                entity_keys=needs.entities,
                unstruct_keys=needs.unstruct,
                logs=frozenset(log.state_id for log in self.event_logs.values()),
            ),
            backfills=tuple(sorted(self.backfills)),
        )


def _check_one_source_per_key(compiled_groups: list[tuple[AttributeGroup, CompiledGroup]]) -> None:
    """Entities of one key name share rows, so every group must read the id the same way."""
    sources: dict[str, Any] = {}
    for group, _ in compiled_groups:
        key = group.attribute_key
        if sources.setdefault(key.name, key.source) != key.source:
            raise DefinitionError(
                f"attribute group {group.full_name}: attribute_key {key.name!r} reads its id "
                "from a different property than another published group's"
            )


def _window(attribute: CompiledAttribute) -> Window:
    return window_for(get_reducer(attribute.aggregation), attribute.period_ms)


def _slot(
    sid: str, readers: list[tuple[int | None, CompiledAttribute, CompiledKey]], since_ms: int
) -> Slot:
    ttls = [ttl for ttl, _, _ in readers]
    retention = None if None in ttls else max(t for t in ttls if t is not None)
    attribute = readers[0][1]
    return Slot(
        id=sid,
        attribute=attribute,
        window=_window(attribute),
        retention_ms=retention,
        skips_none=get_reducer(attribute.aggregation).skips_none,
        since_ms=since_ms,
    )


def _backfills(
    compiled_groups: list[tuple[AttributeGroup, CompiledGroup]],
    slots: dict[str, Slot],
    published_at_ms: Mapping[tuple[str, int], int],
) -> dict[str, Backfill]:
    """A backfill per published group with ``backfill_since_tstamp``, for the slots it is the
    first reader of (counting from its own publication); none for a definitions file's groups
    (published at 0: live from the start). Those slots in ``slots`` are replaced by copies
    naming their backfill."""
    found: dict[str, Backfill] = {}
    taken: set[str] = set()
    for group, compiled in sorted(compiled_groups, key=lambda gc: (gc[0].name, gc[0].version)):
        published_ms = published_at_ms.get((group.name, group.version), 0)
        since, until = group.backfill_since_tstamp, group.backfill_until_tstamp
        if since is None or not published_ms:
            continue
        bid = backfill_id(group.name, group.version, published_ms)
        own = []
        for attribute in compiled.attributes:
            slot = slots[slot_id(attribute, _window(attribute))]
            if slot.since_ms == published_ms and slot.id not in taken:
                slots[slot.id] = slot = replace(slot, backfill=bid)
                own.append(slot)
                taken.add(slot.id)
        if own:
            found[bid] = Backfill(
                id=bid,
                group=group.name,
                version=group.version,
                since_ms=int(since.timestamp() * 1000),
                published_at_ms=published_ms,
                program=KeyProgram(key=compiled.key, slots=tuple(own)),
                until_ms=None if until is None else int(until.timestamp() * 1000),
            )
    return found


def _compile_log(log: EventLog, known: Mapping[str, AttributeKey]) -> CompiledEventLog:
    key = known.get(log.attribute_key.name)
    if key is None:
        raise DefinitionError(
            f"event log {log.name!r}: attribute_key {log.attribute_key.name!r} is not registered"
        )
    return compile_event_log(log, key)


def _with_resolved_key(group: AttributeGroup, known: Mapping[str, AttributeKey]) -> AttributeGroup:
    key = group.attribute_key
    if key.source is not None and key.property is not None:
        return group
    registered = known.get(key.name)
    if registered is None:
        if key.source is not None:
            return group
        raise DefinitionError(
            f"attribute group {group.full_name}: attribute_key {key.name!r} is not registered"
        )
    return group.model_copy(update={"attribute_key": registered})


def _ttl_ms(group: AttributeGroup, attribute: Any) -> int | None:
    def ms(value: Any) -> int | None:
        return None if value is None else duration_ms(value)

    return effective_ttl(ms(attribute.ttl), ms(group.ttl), ms(group.attribute_key.ttl))
