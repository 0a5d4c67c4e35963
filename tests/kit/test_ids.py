from __future__ import annotations

from kibitz.kit.ids import new_id


def test_new_ids_are_version_7_and_sort_by_creation_time() -> None:
    ids = [new_id() for _ in range(200)]
    assert all(identifier.version == 7 for identifier in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
