"""The definitions registry: what the API stores and the engine computes.

``state`` folds the registry log into a :class:`Registry`; ``commands`` turn API requests into
log records; ``models`` holds the API bodies that are not engine definitions.
"""

from signals_stream.registry.commands import (
    AlreadyExists,
    Change,
    Conflict,
    create,
    delete,
    set_batch_source,
    set_published,
    update,
)
from signals_stream.registry.entries import KINDS, VERSIONED, Entry, Kind, Registry, entry_key
from signals_stream.registry.models import (
    MAX_IDS,
    EventLog,
    OnlineAttributesRequest,
    PublishSelection,
    Service,
)

__all__ = [
    "KINDS",
    "MAX_IDS",
    "VERSIONED",
    "AlreadyExists",
    "Change",
    "Conflict",
    "Entry",
    "EventLog",
    "Kind",
    "OnlineAttributesRequest",
    "PublishSelection",
    "Registry",
    "Service",
    "create",
    "delete",
    "entry_key",
    "set_batch_source",
    "set_published",
    "update",
]
