"""Redis key layout of the profiles store, shared by the workers' mirror and the readers.

    <app_id>:row:<key name>:<entity id>   the entity row's encoded bytes (``state.encode_row``)
    <app_id>:synced:<partition>           set once a worker has copied the whole partition

One blob per entity row, not one per group version: the row holds every attribute state of its
key, shared by definition hash across groups and versions (``engine.catalog``), so one copy
serves every group version and a publish needs no rewrite. The app id keeps several
deployments apart in one Redis database. Key names cannot contain ``:`` (validated), so the
layout is unambiguous whatever the entity id holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from signals_stream.routing import split_row_key

__all__ = ["RedisLayout"]


@dataclass(frozen=True, slots=True)
class RedisLayout:
    """Key names under one deployment's prefix (its app id)."""

    prefix: str

    def row(self, key_name: str, entity_id: bytes) -> bytes:
        return b"%s:row:%s:%s" % (self.prefix.encode(), key_name.encode(), entity_id)

    def row_of(self, row_key: bytes) -> bytes:
        """The Redis key of a table row key (``routing.entity_row_key``)."""
        key_name, entity_id = split_row_key(row_key)
        return self.row(key_name, entity_id)

    def synced(self, partition: int) -> bytes:
        return f"{self.prefix}:synced:{partition}".encode()
