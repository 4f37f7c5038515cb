"""Intervention definitions: ``RuleIntervention`` (as SDK 0.4.10 publishes it) and
``InterventionInstance`` (a direct push, and what subscribers receive).

``criteria`` is a tree of ``all`` / ``any`` / ``none`` (NOR) blocks, nested to any depth, over
``{"attribute": "group:attribute", "operator", "value"}``. Invalid input raises
:class:`~signals_stream.errors.DefinitionError` naming the field (``criteria.all.1.value: ...``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal, Self, get_args

from pydantic import (
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationError,
    model_validator,
)

from signals_stream.definitions._base import (
    DefinitionModel,
    Name,
    Owner,
    Text,
    check_encodable,
    definition_error,
)
from signals_stream.errors import DefinitionError
from signals_stream.patterns import PatternError, compile_like, compile_rlike

__all__ = [
    "INTERVENTION_OPERATORS",
    "MAX_CRITERIA_DEPTH",
    "AttributeKeyLink",
    "CriteriaAll",
    "CriteriaAny",
    "CriteriaNode",
    "CriteriaNone",
    "CriterionValue",
    "GroupLink",
    "InterventionCriterion",
    "InterventionInstance",
    "InterventionOperator",
    "RuleIntervention",
    "TargetAttributeKey",
    "iter_criteria",
]

InterventionOperator = Literal[
    "=", "!=", "<", ">", "<=", ">=", "like", "not like", "rlike", "not rlike",
    "in", "not in", "is null", "is not null", "changed",
]  # fmt: skip
INTERVENTION_OPERATORS: tuple[str, ...] = get_args(InterventionOperator)
MAX_CRITERIA_DEPTH = 32  # nesting of all/any/none; bounds recursion on hostile input

# `group:attribute`, the group unversioned (the OpenAPI pattern, 3..257 characters).
QualifiedName = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9_]{1,128}:[A-Za-z0-9_]{1,128}$")
]
CriterionValue = str | int | float | bool | tuple[str | int | float | bool, ...] | None
_NO_VALUE = ("is null", "is not null", "changed")
_LISTS = ("in", "not in")
_PATTERNS = {"like": compile_like, "not like": compile_like,
             "rlike": compile_rlike, "not rlike": compile_rlike}  # fmt: skip
_ORDERING = ("<", ">", "<=", ">=")
_NULLABLE = ("version", "is_published")
_UNION_TAGS = re.compile(r"\.<(?:all|any|none|criterion)>")


class InterventionCriterion(DefinitionModel):
    """One condition on an attribute's current value (``changed``: versus its previous one).

    Args:
        attribute: ``group:attribute``; the group is unversioned and resolves to the latest
            published version that has the attribute (see ``interventions.matcher``).
        operator: one of :data:`INTERVENTION_OPERATORS`.
        value: scalar comparand; a non-empty list for ``in`` / ``not in`` (a list with ``=`` /
            ``!=`` compares a whole array); a pattern for ``like`` / ``rlike`` and their
            negations; omitted for ``is null``, ``is not null`` and ``changed``.
    """

    attribute: QualifiedName
    operator: InterventionOperator
    value: CriterionValue = None

    @model_validator(mode="after")
    def _value_fits_operator(self) -> InterventionCriterion:
        op, value = self.operator, self.value
        if op in _NO_VALUE:
            if value is not None:
                raise ValueError(f"value: must be omitted for {op!r}")
            return self
        if value is None:
            raise ValueError(f"value: required for {op!r} (use 'is null' to test for null)")
        if op in _LISTS and not (isinstance(value, tuple) and value):
            raise ValueError(f"value: {op!r} needs a non-empty list")
        if isinstance(value, tuple):
            if op not in (*_LISTS, "=", "!="):
                raise ValueError("value: a list is only valid with 'in', 'not in', '=' or '!='")
            if len({_family(item) for item in value}) > 1:
                raise ValueError("value: list items must all be strings, numbers or booleans")
        elif op in _PATTERNS:
            if not isinstance(value, str):
                raise ValueError(f"value: {op!r} needs a string pattern")
            try:
                _PATTERNS[op](value)  # compiled (and cached) once, here
            except PatternError as exc:
                raise ValueError(f"value: {exc}") from None
        elif op in _ORDERING and isinstance(value, bool):
            raise ValueError(f"value: {op!r} cannot compare booleans")
        return self


def _family(value: Any) -> type:
    return type(value) if isinstance(value, bool | str) else float  # int and float mix


class CriteriaAll(DefinitionModel):
    """Every child holds."""

    all: tuple[CriteriaNode, ...]


class CriteriaAny(DefinitionModel):
    """At least one child holds."""

    any: tuple[CriteriaNode, ...]


class CriteriaNone(DefinitionModel):
    """No child holds (NOR)."""

    none: tuple[CriteriaNode, ...]


def _node_kind(value: Any) -> str:
    if isinstance(value, dict):
        # No block key: a criterion. Several: the first wins, `extra="forbid"` names the rest.
        return next((f"<{k}>" for k in ("all", "any", "none") if k in value), "<criterion>")
    kinds: dict[type[DefinitionModel], str] = {
        CriteriaAll: "<all>",
        CriteriaAny: "<any>",
        CriteriaNone: "<none>",
    }
    return kinds.get(type(value), "<criterion>")


# Tags are `<...>` so the error formatter can drop them from field paths.
CriteriaNode = Annotated[
    Annotated[CriteriaAll, Tag("<all>")]
    | Annotated[CriteriaAny, Tag("<any>")]
    | Annotated[CriteriaNone, Tag("<none>")]
    | Annotated[InterventionCriterion, Tag("<criterion>")],
    Discriminator(_node_kind),
]


def iter_criteria(
    node: CriteriaNode, path: str = "criteria"
) -> Iterator[tuple[str, tuple[str, ...], InterventionCriterion]]:
    """Every criterion under ``node`` (dotted ``path``), in order, as ``(path, enclosing block
    kinds, criterion)``, e.g. ``("criteria.all.1.any.0", ("all", "any"), criterion)``.

    Raises:
        ValueError: an empty block, or nesting deeper than :data:`MAX_CRITERIA_DEPTH`.
    """
    stack: list[tuple[CriteriaNode, str, tuple[str, ...]]] = [(node, path, ())]
    while stack:
        current, where, blocks = stack.pop()
        if isinstance(current, InterventionCriterion):
            yield where, blocks, current
            continue
        if len(blocks) >= MAX_CRITERIA_DEPTH:
            raise ValueError(f"criteria: blocks nested deeper than {MAX_CRITERIA_DEPTH}")
        kind = next(iter(type(current).model_fields))  # the model's only field: all/any/none
        children = list(enumerate(getattr(current, kind)))
        if not children:  # it would reference no attribute, so it could never be evaluated
            raise ValueError(f"{where}.{kind}: needs at least one condition")
        stack += [(c, f"{where}.{kind}.{i}", (*blocks, kind)) for i, c in reversed(children)]


class AttributeKeyLink(DefinitionModel):
    """A target attribute key, by name."""

    name: Name


class GroupLink(DefinitionModel):
    """A payload attribute group, by name and version."""

    name: Name
    version: int = Field(default=1, ge=1)


class RuleIntervention(DefinitionModel):
    """A rule-based intervention. Unknown top-level fields are kept and echoed (as for groups).

    Args:
        name: rule name.
        version: rule version (>= 1).
        description: free text.
        owner: owner, usually an email (required by the SDK, optional on the wire).
        is_published: the publish switch.
        criteria: the condition tree; ``changed`` only alone or (nested) inside ``all``.
        target_attribute_keys: keys whose ids (from the triggering event) receive the payload;
            default: the key of the referenced groups.
        payload_attribute_groups: group versions whose values travel in the payload.
    """

    model_config = ConfigDict(extra="allow")

    name: Name
    version: int = Field(default=1, ge=1)
    description: Text | None = None
    owner: Owner | None = None
    is_published: bool = False
    criteria: CriteriaNode
    target_attribute_keys: tuple[AttributeKeyLink, ...] | None = None
    payload_attribute_groups: tuple[GroupLink, ...] | None = None

    def __init__(self, /, **data: Any) -> None:
        try:
            super(DefinitionModel, self).__init__(**data)
        except ValidationError as exc:
            raise _rule_error(exc) from exc

    @classmethod
    def parse(cls, data: Mapping[str, Any] | str | bytes) -> Self:
        """Validate a JSON body (text, bytes or decoded); DefinitionError names bad fields."""
        try:
            if isinstance(data, str | bytes):
                rule = cls.model_validate_json(data)
            else:
                rule = cls.model_validate(data)
        except ValidationError as exc:
            raise _rule_error(exc) from exc
        return check_encodable(rule)

    @model_validator(mode="before")
    @classmethod
    def _null_means_default(cls, data: Any) -> Any:
        if isinstance(data, dict):  # the OpenAPI schema makes these nullable with a default
            return {k: v for k, v in data.items() if v is not None or k not in _NULLABLE}
        return data

    @model_validator(mode="after")
    def _changed_placement(self) -> RuleIntervention:
        for path, blocks, criterion in iter_criteria(self.criteria):
            if criterion.operator == "changed" and any(b != "all" for b in blocks):
                raise ValueError(f"{path}: 'changed' is only allowed alone or inside 'all'")
        return self

    @property
    def key(self) -> str:
        """``name:version``: how the fired state and the index name this rule version."""
        return f"{self.name}:{self.version}"

    @property
    def attributes(self) -> tuple[str, ...]:
        """The ``group:attribute`` names the criteria reference, in order, without repeats."""
        return tuple(dict.fromkeys(c.attribute for _, _, c in iter_criteria(self.criteria)))


def _rule_error(exc: ValidationError) -> DefinitionError:
    """``definition_error`` without the union tags in field paths (``criteria.all.0.value``)."""
    message = str(definition_error(exc, kind="RuleIntervention"))
    return DefinitionError(_UNION_TAGS.sub("", message))


class TargetAttributeKey(DefinitionModel):
    """The receiving attribute key of one delivered intervention."""

    name: Annotated[str, StringConstraints(min_length=1)]
    id: Annotated[str, StringConstraints(min_length=1)]


class InterventionInstance(DefinitionModel):
    """A direct-push body, and the payload delivered to subscribers.

    Unknown fields are dropped.

    Args:
        name: intervention name.
        version: intervention version.
        attributes: string to string (SDK clients reject other values).
        intervention_id: UUID, shared by every target of one triggering; set by the server.
        target_attribute_key: ``{name, id}`` of the receiver; set by the server.
        triggered_at_ms: ours (SDKs ignore it): wall clock of the rule evaluation.
        event_id: ours: the triggering event.
        event_time_ms: ours: that event's time.
    """

    model_config = ConfigDict(extra="ignore")

    name: Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^\x00]*$")]
    version: int
    attributes: dict[str, str] | None = None
    intervention_id: str | None = None
    target_attribute_key: TargetAttributeKey | None = None
    triggered_at_ms: int | None = None
    event_id: str | None = None
    event_time_ms: int | None = None


for _model in (CriteriaAll, CriteriaAny, CriteriaNone, RuleIntervention):
    _model.model_rebuild()
