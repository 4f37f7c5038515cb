"""The attribute engine (pure): published definitions -> per-key programs -> entity rows.

``catalog`` compiles the published groups into one program per attribute key (attributes
deduplicated by definition hash), ``fold`` applies events to an entity row, ``read`` evaluates
a group's attributes from a row at read time (rolling windows, ``time_since_*``, TTLs), and
``step`` is one entity row's whole update (fold, rules), as the entity agent runs it.
"""

from signals_stream.engine.apply import Applied, SourcedEvent, apply_record
from signals_stream.engine.catalog import (
    Catalog,
    KeyProgram,
    PublishedGroup,
    ReadableAttribute,
    Slot,
)
from signals_stream.engine.expiry import row_expired
from signals_stream.engine.fold import fold_events, prune_row
from signals_stream.engine.read import read_attribute, read_group
from signals_stream.engine.rules import fire_interventions, watched_values
from signals_stream.engine.step import RowUpdate, step_row

__all__ = [
    "Applied",
    "apply_record",
    "Catalog",
    "KeyProgram",
    "PublishedGroup",
    "ReadableAttribute",
    "RowUpdate",
    "Slot",
    "SourcedEvent",
    "fire_interventions",
    "fold_events",
    "prune_row",
    "read_attribute",
    "read_group",
    "row_expired",
    "step_row",
    "watched_values",
]
