"""Definitions: attribute keys, attribute groups and attributes, and their compiled form.

The models accept exactly the JSON the ``snowplow-signals`` SDK sends, are frozen and raise
:class:`~signals_stream.errors.DefinitionError` on invalid input. ``compile_*`` turn them into
closures over a parsed event for the hot path.
"""

from signals_stream.definitions.attributes import (
    AGGREGATIONS,
    ATTRIBUTE_TYPES,
    Aggregation,
    Attribute,
    AttributeType,
    TimeUnit,
)
from signals_stream.definitions.compiled import (
    CompiledAttribute,
    CompiledGroup,
    CompiledKey,
    attribute_needs,
    compile_attribute,
    compile_events,
    compile_group,
    compile_key,
    needed_fields,
)
from signals_stream.definitions.criteria import (
    OPERATORS,
    Criteria,
    Criterion,
    compile_criteria,
    like_to_regex,
)
from signals_stream.definitions.durations import parse_duration
from signals_stream.definitions.evaluate import EventView, NeededFields, compile_property
from signals_stream.definitions.groups import AttributeGroup, BatchSource, WarehouseField
from signals_stream.definitions.hashing import HASH_VERSION, canonical_definition, definition_hash
from signals_stream.definitions.keys import (
    BUILTIN_KEYS,
    DOMAIN_SESSIONID,
    DOMAIN_USERID,
    NETWORK_USERID,
    USER_ID,
    AttributeKey,
)
from signals_stream.definitions.paths import compile_path, extract
from signals_stream.definitions.properties import (
    AtomicProperty,
    CalculatedProperty,
    EntityProperty,
    EventProperty,
)
from signals_stream.definitions.selectors import EventSelector

__all__ = [
    "AGGREGATIONS",
    "ATTRIBUTE_TYPES",
    "BUILTIN_KEYS",
    "DOMAIN_SESSIONID",
    "DOMAIN_USERID",
    "HASH_VERSION",
    "NETWORK_USERID",
    "OPERATORS",
    "USER_ID",
    "Aggregation",
    "AtomicProperty",
    "Attribute",
    "AttributeGroup",
    "AttributeKey",
    "AttributeType",
    "BatchSource",
    "CalculatedProperty",
    "CompiledAttribute",
    "CompiledGroup",
    "CompiledKey",
    "Criteria",
    "Criterion",
    "EntityProperty",
    "EventProperty",
    "EventSelector",
    "EventView",
    "NeededFields",
    "TimeUnit",
    "WarehouseField",
    "attribute_needs",
    "canonical_definition",
    "compile_attribute",
    "compile_criteria",
    "compile_events",
    "compile_group",
    "compile_key",
    "compile_path",
    "compile_property",
    "definition_hash",
    "extract",
    "like_to_regex",
    "needed_fields",
    "parse_duration",
]
