"""Table keys of entity rows: the attribute key's name and the raw entity id."""

from __future__ import annotations

__all__ = ["entity_row_key", "split_row_key"]

# Unit separator: cannot appear in a key name (validated) and keeps row keys human-readable.
_ROW_KEY_SEP = b"\x1f"


def entity_row_key(key_name: str, entity_id: bytes) -> bytes:
    """Table key of one entity: the key name and the raw id, so equal ids of different keys
    (a ``user_id`` that is also some ``domain_userid``) never share a row."""
    return key_name.encode() + _ROW_KEY_SEP + entity_id


def split_row_key(row_key: bytes) -> tuple[str, bytes]:
    name, _, entity_id = row_key.partition(_ROW_KEY_SEP)
    return name.decode(), entity_id
