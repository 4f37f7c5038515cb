"""Re-keying: from one parsed event to the entity events bound for each entity's partition.

``plan`` decides which entities an event goes to and what of it travels, ``records`` packs the
entity events of a batch into one Kafka record per partition, ``row_keys`` names the table
row of an entity. Pure: the partitioner and the producer are the agents'.
"""

from signals_stream.routing.plan import (
    BUILTIN_KEYS,
    EntityEvent,
    KeyRoute,
    RoutingPlan,
    builtin_key,
    entity_projections,
    route_event,
)
from signals_stream.routing.records import (
    decode_entity_events,
    encode_entity_event_records,
    encode_entity_events,
)
from signals_stream.routing.row_keys import entity_row_key, split_row_key

__all__ = [
    "BUILTIN_KEYS",
    "EntityEvent",
    "KeyRoute",
    "RoutingPlan",
    "builtin_key",
    "decode_entity_events",
    "encode_entity_event_records",
    "encode_entity_events",
    "entity_projections",
    "entity_row_key",
    "route_event",
    "split_row_key",
]
