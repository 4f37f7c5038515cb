"""The aggregation names Signals defines, their reducers, and the automatic default values.

Defaults (``default_for``) apply when a read finds no value (``result`` is ``None``: no data,
everything fell out of the window, or expired) and the attribute has no ``default_value``.
Signals leaves the table undocumented ("assigned based on the type"); ours gives the neutral
value where the aggregation has one and ``None`` where any number would be a made-up value:

=============================================  =====================================
aggregation                                    default
=============================================  =====================================
counter, sum, approx_count_distinct            0 (0.0 for ``double`` / ``float``)
unique_list                                    ``[]``
category_count                                 ``{}``
min, max, mean, first, last, most_frequent,    ``None``
least_frequent, time_since_first/last
=============================================  =====================================
"""

from __future__ import annotations

from typing import Any

from signals_stream.aggregations.base import Reducer
from signals_stream.aggregations.distinct import ApproxCountDistinct, UniqueList
from signals_stream.aggregations.frequency import CategoryCount, LeastFrequent, MostFrequent
from signals_stream.aggregations.numeric import Count, Max, Mean, Min, Sum
from signals_stream.aggregations.temporal import First, Last, TimeSinceFirst, TimeSinceLast
from signals_stream.errors import DefinitionError

__all__ = ["AGGREGATIONS", "REDUCERS", "default_for", "get_reducer"]

# Reducers are stateless, so one shared instance per aggregation serves every attribute.
REDUCERS: dict[str, Reducer[Any]] = {
    r.name: r
    for r in (
        Count(),
        Sum(),
        Min(),
        Max(),
        Mean(),
        First(),
        Last(),
        UniqueList(),
        MostFrequent(),
        LeastFrequent(),
        CategoryCount(),
        ApproxCountDistinct(),
        TimeSinceLast(),
        TimeSinceFirst(),
    )
}

# In the order of `sdk:models/model.py` `Attribute.aggregation`.
AGGREGATIONS: tuple[str, ...] = tuple(REDUCERS)

_FLOAT_TYPES = frozenset({"double", "float"})
_ZERO_DEFAULT = frozenset({"counter", "sum", "approx_count_distinct"})


def get_reducer(aggregation: str) -> Reducer[Any]:
    """The reducer of an aggregation name.

    Args:
        aggregation: a Signals aggregation name, e.g. ``"counter"``.

    Returns:
        The shared reducer instance.

    Raises:
        DefinitionError: unknown aggregation.
    """
    try:
        return REDUCERS[aggregation]
    except KeyError:
        raise DefinitionError(f"unknown aggregation {aggregation!r}") from None


def default_for(aggregation: str, attr_type: str) -> Any:
    """The value an attribute reads as when it has no value and no ``default_value``.

    Args:
        aggregation: the attribute's aggregation.
        attr_type: the attribute's declared ``type`` (``int32``, ``double``, ``string_list``...).

    Returns:
        A fresh default value (lists and dicts are new objects), or ``None``.

    Raises:
        DefinitionError: unknown aggregation.
    """
    get_reducer(aggregation)
    if aggregation in _ZERO_DEFAULT:
        return 0.0 if attr_type in _FLOAT_TYPES else 0
    if aggregation == "unique_list":
        return []
    if aggregation == "category_count":
        return {}
    return None
