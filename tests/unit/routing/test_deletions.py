"""Deletion markers on the entity-events topic: written, recognised and read back."""

from __future__ import annotations

from signals_stream.routing import entity_row_key
from signals_stream.routing.deletions import (
    DELETION_HEADER,
    decode_deletion,
    encode_deletion,
    is_deletion,
)


def test_a_marker_names_its_request_and_the_row_to_delete() -> None:
    marker = decode_deletion(encode_deletion("req-1", "domain_userid", b"a\x1eb"))
    assert marker.request_id == "req-1"
    assert marker.row_key == entity_row_key("domain_userid", b"a\x1eb")


def test_only_records_with_the_header_are_markers() -> None:
    assert is_deletion([(DELETION_HEADER, b"1")]) and is_deletion({DELETION_HEADER: b"1"})
    assert not is_deletion(None) and not is_deletion([("signals-push", b"1")])
