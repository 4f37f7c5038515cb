"""The clean-stop manifest: written atomically, taken once, about one changelog only."""

from __future__ import annotations

from pathlib import Path

from tables.local_copies import LocalCopies
from tables.stop_manifest import MANIFEST_NAME, StopManifest, take_manifest, write_manifest


def test_a_manifest_is_taken_once(tmp_path: Path) -> None:
    write_manifest(tmp_path, StopManifest("app-changelog", {0: 41, 3: -1}))
    taken = take_manifest(tmp_path, "app-changelog")
    assert taken == StopManifest("app-changelog", {0: 41, 3: -1})
    assert not (tmp_path / MANIFEST_NAME).exists()
    assert take_manifest(tmp_path, "app-changelog") is None  # speaks for one start only


def test_another_changelog_or_a_damaged_file_is_nothing(tmp_path: Path) -> None:
    write_manifest(tmp_path, StopManifest("old-app-changelog", {0: 1}))
    assert take_manifest(tmp_path, "app-changelog") is None
    (tmp_path / MANIFEST_NAME).write_text('{"changelog": "app-changelog", "offsets": [1]')
    assert take_manifest(tmp_path, "app-changelog") is None
    (tmp_path / MANIFEST_NAME).write_text('{"changelog": "app-changelog", "offsets": {"x": 1}}')
    assert take_manifest(tmp_path, "app-changelog") is None


def test_unchanged_means_the_changelog_ends_right_after_the_noted_offset() -> None:
    manifest = StopManifest("c", {0: 41, 1: 9, 2: -1, 3: 5})
    # 0: one record more (written since); 1: exactly; 2: empty and still empty; 3: shorter
    # (the topic was recreated): only 1 and 2 are the local copy.
    assert manifest.unchanged({0: 43, 1: 10, 2: 0, 3: 2}) == [1, 2]
    assert manifest.unchanged({}) == []


class _DB:
    def __init__(self, rows: dict[bytes, bytes]) -> None:
        self.rows, self.closed = rows, False

    def get(self, key: bytes) -> bytes | None:
        return self.rows.get(key)

    def close(self) -> None:
        self.closed = True


def test_local_copies_read_until_dropped() -> None:
    first, second = _DB({b"k": b"v"}), _DB({})
    copies = LocalCopies({0: first, 2: second}, {0: 7, 2: 3, 5: 1})
    assert copies.partitions == {0, 2} and copies.last_offsets == {0: 7, 2: 3}
    assert copies.get(0, b"k") == b"v" and copies.get(2, b"k") is None
    copies.drop(0)
    assert 0 not in copies and first.closed and copies.last_offsets == {2: 3}
    copies.close()
    assert second.closed and not copies.partitions
