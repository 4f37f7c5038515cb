"""Rule interventions, the pure part, split as Feast splits permissions.

``definitions`` validates what the SDK publishes; ``criteria`` compiles a rule's condition tree
into a predicate over attribute values; ``matcher`` resolves rules against the published groups
and indexes them by attribute; ``evaluator`` decides what fires on an update and builds payloads.
Delivery (Kafka, SSE) lives in ``agents/`` and ``api/``.
"""

from signals_stream.interventions.definitions import (
    INTERVENTION_OPERATORS,
    InterventionCriterion,
    InterventionInstance,
    RuleIntervention,
)
from signals_stream.interventions.evaluator import (
    Evaluation,
    Firing,
    build_instance,
    build_instances,
    evaluate,
    intervention_id,
    payload_attributes,
    prune_fired,
    render_value,
)
from signals_stream.interventions.matcher import (
    AttributeRef,
    GroupInfo,
    ResolvedRule,
    RuleIndex,
    build_index,
    resolve_attribute,
    resolve_rule,
)
from signals_stream.interventions.rule_criteria import Verdict, compile_criteria, explain_criteria
from signals_stream.patterns import PatternError, compile_like, compile_rlike

__all__ = [
    "INTERVENTION_OPERATORS",
    "AttributeRef",
    "Evaluation",
    "Firing",
    "GroupInfo",
    "InterventionCriterion",
    "InterventionInstance",
    "PatternError",
    "ResolvedRule",
    "RuleIndex",
    "RuleIntervention",
    "Verdict",
    "build_index",
    "build_instance",
    "build_instances",
    "compile_criteria",
    "compile_like",
    "compile_rlike",
    "evaluate",
    "explain_criteria",
    "intervention_id",
    "payload_attributes",
    "prune_fired",
    "render_value",
    "resolve_attribute",
    "resolve_rule",
]
