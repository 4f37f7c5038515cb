"""The Redis profiles store: a copy of every entity row, for readers that are not workers.

Workers mirror each entity row they write (``mirror``) to Redis, behind the stream; the
stateless ``signals-stream api`` reads rows back (``reader``) and evaluates them with the same
code as the workers (``signals_stream.serving.retrieval``). ``keys`` is the layout both sides share.
"""

from signals_stream.profiles.connection import connect
from signals_stream.profiles.keys import RedisLayout
from signals_stream.profiles.mirror import MirrorStats, RowMirror, RowSource
from signals_stream.profiles.reader import ProfilesUnavailable, RedisRows

__all__ = [
    "MirrorStats",
    "ProfilesUnavailable",
    "RedisLayout",
    "RedisRows",
    "RowMirror",
    "RowSource",
    "connect",
]
