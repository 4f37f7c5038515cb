"""Every Signals aggregation as a reducer behind one interface (see ``base`` for the contract).

Families: ``numeric`` (counter, sum, min, max, mean), ``temporal`` (first, last,
time_since_first, time_since_last), ``frequency`` (most_frequent, least_frequent,
category_count) and ``distinct`` (unique_list, approx_count_distinct). ``registry`` maps names
to reducers and holds the automatic defaults.
"""

from __future__ import annotations

from signals_stream.aggregations.base import (
    TIME_UNIT_MS,
    Reducer,
    decode_value,
    encode_value,
    iso_utc,
    render_value,
    time_unit_ms,
    timestamp_text,
)
from signals_stream.aggregations.distinct import UNIQUE_LIST_CAP, ApproxCountDistinct, UniqueList
from signals_stream.aggregations.frequency import (
    FREQUENCY_CAP,
    CategoryCount,
    LeastFrequent,
    MostFrequent,
)
from signals_stream.aggregations.lookup import AGGREGATIONS, REDUCERS, default_for, get_reducer
from signals_stream.aggregations.numeric import Count, Max, Mean, Min, Sum
from signals_stream.aggregations.temporal import First, Last, TimeSinceFirst, TimeSinceLast

__all__ = [
    "AGGREGATIONS",
    "FREQUENCY_CAP",
    "REDUCERS",
    "TIME_UNIT_MS",
    "UNIQUE_LIST_CAP",
    "ApproxCountDistinct",
    "CategoryCount",
    "Count",
    "First",
    "Last",
    "LeastFrequent",
    "Max",
    "Mean",
    "Min",
    "MostFrequent",
    "Reducer",
    "Sum",
    "TimeSinceFirst",
    "TimeSinceLast",
    "UniqueList",
    "decode_value",
    "default_for",
    "encode_value",
    "get_reducer",
    "iso_utc",
    "render_value",
    "time_unit_ms",
    "timestamp_text",
]
