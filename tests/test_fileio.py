"""Temp-then-rename writes: a failed block leaves nothing under the final name."""

from pathlib import Path

import pytest

from imgclf.fileio import atomic_output


def test_a_folder_appears_only_when_complete(tmp_path: Path) -> None:
    target = tmp_path / "export" / "saved_model"
    with atomic_output(target) as temporary:
        (temporary / "variables").mkdir(parents=True)
        (temporary / "saved_model.pb").write_bytes(b"graph")
        assert not target.exists()
    assert (target / "saved_model.pb").read_bytes() == b"graph"
    assert sorted(path.name for path in target.parent.iterdir()) == ["saved_model"]


def test_a_failed_folder_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "saved_model"
    with pytest.raises(RuntimeError, match="killed"), atomic_output(target) as temporary:
        (temporary / "variables").mkdir(parents=True)
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
