"""History from the input log, without a warehouse: ``test()`` of an unpublished group and the
intervention preview (and, later, backfill and training datasets).

``requests`` holds the request models as the SDK sends them, ``reading`` reads a window of the
input topic into an :class:`~signals_stream.engine.history.EntityHistory` within the bounds
(``SIGNALS_HISTORY_MAX_RECORDS``, ``SIGNALS_HISTORY_DEADLINE_S``), and ``group_test`` /
``preview`` fold it with the engine on event time.
"""
