"""Deleting one entity's data travels the entity-events topic as a marker record.

A marker sits in the entity's partition among its events, so the entities agent applies every
event before it, deletes the row, and treats what comes after as new activity. After a crash
the partition is read again from the committed offset: events before the marker rebuild part of
the row and the marker deletes it again, so the end state never holds the deleted data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from signals_stream.routing.row_keys import entity_row_key

__all__ = ["DELETION_HEADER", "Deletion", "decode_deletion", "encode_deletion", "is_deletion"]

DELETION_HEADER = "signals-delete"
_SEP = b"\x1e"  # record separator: not in a request id (a UUID) or a key name


class Deletion(NamedTuple):
    request_id: str
    row_key: bytes


def encode_deletion(request_id: str, key_name: str, entity_id: bytes) -> bytes:
    return request_id.encode() + _SEP + entity_row_key(key_name, entity_id)


def decode_deletion(value: bytes) -> Deletion:
    request_id, _, row_key = value.partition(_SEP)
    return Deletion(request_id.decode(errors="replace"), row_key)


def is_deletion(headers: Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None) -> bool:
    """Whether a record's headers (a list of pairs from Kafka, or a mapping) mark a deletion."""
    if isinstance(headers, Mapping):
        return DELETION_HEADER in headers
    return any(name == DELETION_HEADER for name, _ in headers or ())
