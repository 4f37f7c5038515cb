"""Resolve published rules against the published groups, and index them by attribute.

Resolution (``docs:interventions`` "Versioning"): ``group:attribute`` is unversioned. It names the
attribute in the **latest published version of the group that has it**, so if v4 drops the
attribute, v3 keeps being used. A rule is evaluated in the entity row of one attribute key, so:

- every group its criteria reference must share one attribute key;
- its payload groups, named with their versions, must be published with that key.

Its targets are ``target_attribute_keys``, or else that key.

Only the highest published version of each rule name is active. Publishing v2 replaces v1, so one
triggering never reaches subscribers twice. A rule that cannot be resolved is left out, and
:attr:`RuleIndex.skipped` says why; its older versions are not used in its place.

Selectivity: :meth:`RuleIndex.relevant` looks up only the changed attribute names, so its cost
does not depend on how many rules watch other attributes.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from signals_stream.errors import DefinitionError
from signals_stream.interventions.definitions import RuleIntervention, iter_criteria
from signals_stream.interventions.rule_criteria import Predicate, compile_criteria

__all__ = [
    "AttributeRef",
    "GroupInfo",
    "ResolvedRule",
    "RuleIndex",
    "build_index",
    "resolve_attribute",
    "resolve_rule",
]


class GroupInfo(Protocol):
    """What resolution reads of a published group version (``engine.PublishedGroup`` adapts)."""

    @property
    def key_name(self) -> str:
        """Name of the group's attribute key (``domain_sessionid``...)."""
        ...

    @property
    def attribute_names(self) -> Collection[str]:
        """Names of the group's attributes, in definition order."""
        ...


Groups = Mapping[tuple[str, int], GroupInfo]


@dataclass(frozen=True, slots=True)
class AttributeRef:
    """An unversioned ``group:attribute`` resolved to a published group version.

    Attributes:
        name: the name rules use and value mappings are keyed by (``my_group:cart_value``).
        group: group name.
        version: the resolved group version.
        attribute: attribute name.
    """

    name: str
    group: str
    version: int
    attribute: str

    @property
    def qualified(self) -> str:
        """``my_group_v2:cart_value``: the retrieval API's qualified name."""
        return f"{self.group}_v{self.version}:{self.attribute}"


@dataclass(frozen=True, slots=True, eq=False)
class ResolvedRule:
    """A published rule version ready for evaluation.

    Attributes:
        rule: the definition.
        key_name: the attribute key whose entity rows the rule is evaluated in.
        references: the criteria's attributes, resolved, in first-use order.
        targets: attribute key names that receive the payload.
        payload_groups: ``(group, version)`` whose values travel in the payload.
        predicate: the compiled criteria, ``predicate(previous, current)``.
        uses_changed: a criterion uses ``changed`` (fires on every change, no latch).
    """

    rule: RuleIntervention
    key_name: str
    references: tuple[AttributeRef, ...]
    targets: tuple[str, ...]
    payload_groups: tuple[tuple[str, int], ...]
    predicate: Predicate
    uses_changed: bool

    @property
    def name(self) -> str:
        return self.rule.name

    @property
    def version(self) -> int:
        return self.rule.version

    @property
    def key(self) -> str:
        """``name:version``, the key of the fired state."""
        return self.rule.key


class _Resolver:
    def __init__(self, groups: Groups) -> None:
        self.groups = groups
        self.versions: dict[str, list[int]] = {}
        for name, version in groups:
            self.versions.setdefault(name, []).append(version)
        for versions in self.versions.values():
            versions.sort(reverse=True)
        self.cache: dict[str, AttributeRef] = {}

    def attribute(self, name: str) -> AttributeRef:
        found = self.cache.get(name)
        if found is not None:
            return found
        group, _, attribute = name.partition(":")
        versions = self.versions.get(group)
        if not versions:
            raise DefinitionError(f"{name}: attribute group {group!r} is not published")
        for version in versions:
            if attribute in self.groups[(group, version)].attribute_names:
                found = self.cache[name] = AttributeRef(name, group, version, attribute)
                return found
        raise DefinitionError(
            f"{name}: no published version of {group!r} ({', '.join(map(str, versions))}) "
            f"has the attribute {attribute!r}"
        )

    def rule(self, rule: RuleIntervention) -> ResolvedRule:
        references = tuple(self.attribute(name) for name in rule.attributes)
        keys = {ref.name: self.groups[(ref.group, ref.version)].key_name for ref in references}
        if len(set(keys.values())) != 1:
            found = ", ".join(f"{name} ({key})" for name, key in keys.items())
            raise DefinitionError(f"criteria: attributes of different attribute keys: {found}")
        key_name = next(iter(keys.values()))
        payload = tuple(
            dict.fromkeys((g.name, g.version) for g in rule.payload_attribute_groups or ())
        )
        for group, version in payload:
            info = self.groups.get((group, version))
            if info is None:
                raise DefinitionError(
                    f"payload_attribute_groups: {group} version {version} is not published"
                )
            if info.key_name != key_name:
                raise DefinitionError(
                    f"payload_attribute_groups: {group} version {version} has key "
                    f"{info.key_name!r}, the criteria {key_name!r}"
                )
        targets = tuple(dict.fromkeys(t.name for t in rule.target_attribute_keys or ()))
        return ResolvedRule(
            rule=rule,
            key_name=key_name,
            references=references,
            targets=targets or (key_name,),
            payload_groups=payload,
            predicate=compile_criteria(rule.criteria),
            uses_changed=any(c.operator == "changed" for _, _, c in iter_criteria(rule.criteria)),
        )


def resolve_attribute(name: str, groups: Groups) -> AttributeRef:
    """Resolve ``group:attribute`` to the latest published group version that has it.

    Raises:
        DefinitionError: the group is not published, or no published version has the attribute.
    """
    return _Resolver(groups).attribute(name)


def resolve_rule(rule: RuleIntervention, groups: Groups) -> ResolvedRule:
    """Resolve a rule's references, key, targets and payload groups, and compile its criteria.

    Raises:
        DefinitionError: an attribute cannot be resolved, the criteria span several attribute
            keys, or a payload group is not published with the criteria's key.
    """
    return _Resolver(groups).rule(rule)


@dataclass(frozen=True)
class RuleIndex:
    """The active rules, indexed by the ``group:attribute`` names they reference.

    Attributes:
        rules: active rules by rule name.
        by_attribute: ``group:attribute`` -> the rules referencing it (sorted by name).
        by_key: attribute key name -> the ``group:attribute`` names rules watch in its rows.
        skipped: ``name:version`` of published rules left out -> why.
    """

    rules: Mapping[str, ResolvedRule] = field(default_factory=dict)
    by_attribute: Mapping[str, tuple[ResolvedRule, ...]] = field(default_factory=dict)
    by_key: Mapping[str, frozenset[str]] = field(default_factory=dict)
    skipped: Mapping[str, str] = field(default_factory=dict)

    def watched(self, key_name: str) -> frozenset[str]:
        """The ``group:attribute`` names to read before and after an update of ``key_name``."""
        return self.by_key.get(key_name, frozenset())

    def reference(self, name: str) -> AttributeRef | None:
        """How a watched ``group:attribute`` resolved (None if no rule references it)."""
        rules = self.by_attribute.get(name)
        return None if not rules else next(r for r in rules[0].references if r.name == name)

    def relevant(self, changed: Iterable[str]) -> tuple[ResolvedRule, ...]:
        """The rules referencing any of the ``changed`` names, once each, sorted by name."""
        found: dict[str, ResolvedRule] = {}
        for name in changed:
            for rule in self.by_attribute.get(name, ()):
                found[rule.name] = rule
        return tuple(found[name] for name in sorted(found))

    @property
    def active_keys(self) -> frozenset[str]:
        """``name:version`` of every active rule (fired-state keys worth keeping)."""
        return frozenset(rule.key for rule in self.rules.values())


def build_index(rules: Iterable[RuleIntervention], groups: Groups) -> RuleIndex:
    """Index the highest published version of each rule name against ``groups``.

    Args:
        rules: rule definitions, any versions, published or not.
        groups: the published groups, by ``(name, version)``.

    Returns:
        The index; rules that cannot be resolved are in :attr:`RuleIndex.skipped`.
    """
    latest: dict[str, RuleIntervention] = {}
    for rule in rules:
        if rule.is_published and (
            rule.name not in latest or rule.version > latest[rule.name].version
        ):
            latest[rule.name] = rule
    resolver = _Resolver(groups)
    active: dict[str, ResolvedRule] = {}
    skipped: dict[str, str] = {}
    for name in sorted(latest):
        try:
            active[name] = resolver.rule(latest[name])
        except DefinitionError as exc:
            skipped[latest[name].key] = str(exc)
    by_attribute: dict[str, list[ResolvedRule]] = {}
    by_key: dict[str, set[str]] = {}
    for resolved in active.values():
        for ref in resolved.references:
            by_attribute.setdefault(ref.name, []).append(resolved)
            by_key.setdefault(resolved.key_name, set()).add(ref.name)
    return RuleIndex(
        rules=active,
        by_attribute={name: tuple(found) for name, found in by_attribute.items()},
        by_key={key: frozenset(names) for key, names in by_key.items()},
        skipped=skipped,
    )
