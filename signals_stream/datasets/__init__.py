"""Training datasets (issue #18): one row per anchor (an entity at a moment), its label and
every attribute's value as of that moment, from events strictly before it.

``models`` holds the request and response shapes of SDK 0.4.10's dataset client (pure);
``anchors`` and ``attributes`` build the SQL (sqlglot, every batch dialect); ``bundle`` puts a
request's SQL files together; ``runs`` executes them on the warehouse off the event loop;
``command`` is the ``signals-stream dataset`` CLI.
"""
