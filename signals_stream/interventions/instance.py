"""The intervention instance as the stream builds and sends it: a typed, JSON-ready dict.

The wire model the API validates is ``definitions.InterventionInstance`` (pydantic); this is
the hot path's shape, built once per firing and target and serialised with orjson as is.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

__all__ = ["InstanceDict", "TargetKey"]


class TargetKey(TypedDict):
    name: str  # attribute key name, e.g. ``domain_userid``
    id: str  # the entity id: whose subscribers receive the instance


class InstanceDict(TypedDict):
    """One ``InterventionInstance`` for one target: the SDK's fields, then our metadata."""

    intervention_id: str
    name: str
    version: int
    target_attribute_key: TargetKey
    attributes: dict[str, str]
    triggered_at_ms: NotRequired[int]
    event_id: NotRequired[str]
    event_time_ms: NotRequired[int]
