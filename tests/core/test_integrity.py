"""Readers refuse a pipeline file whose bytes are not those its stage wrote (dvc.lock)."""

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from imgclf.core.errors import UserError
from imgclf.core.fileio import read_json, write_json
from imgclf.core.integrity import DamagedError, check_intact
from imgclf.data.hdf5io import PackReader
from imgclf.models.modelcard import read_entry
from support.packs import write_pack


def lock_outputs(root: Path, stage: str, *names: str) -> None:
    """A dvc.lock in `root` recording `names` as `stage`'s outputs, as they are now."""
    outs = [
        {
            "path": name,
            "hash": "md5",
            "md5": hashlib.md5((root / name).read_bytes()).hexdigest(),
            "size": (root / name).stat().st_size,
        }
        for name in names
    ]
    lock = {"schema": "2.0", "stages": {stage: {"cmd": "true", "outs": outs}}}
    (root / "dvc.lock").write_text(yaml.safe_dump(lock), encoding="utf-8")


def flip_one_byte(path: Path, offset: int) -> None:
    """Bit rot: one byte changed in place, size and mtime kept (DVC does not look again)."""
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    (tmp_path / "data").mkdir()
    images = np.arange(48, dtype=np.uint8).reshape(4, 2, 2, 3)
    write_pack(tmp_path / "data/train.h5", images, [0, 1, 0, 1], ["a", "b"], 2, list("wxyz"))
    write_json(tmp_path / "data/means.json", {"R": 1.0, "G": 2.0, "B": 3.0})
    lock_outputs(tmp_path, "pack@train", "data/train.h5", "data/means.json")
    return tmp_path


def test_intact_files_are_read(repo: Path) -> None:
    with PackReader("data/train.h5") as reader:
        assert len(reader) == 4
    assert read_json(repo / "data/means.json")["G"] == 2.0


@pytest.mark.parametrize("damage", ["bit flip", "truncation"])
def test_a_damaged_pack_is_refused_with_the_commands_that_repair_it(
    repo: Path, damage: str
) -> None:
    pack = repo / "data/train.h5"
    if damage == "bit flip":
        flip_one_byte(pack, pack.stat().st_size - 100)  # inside the image rows
    else:
        os.truncate(pack, pack.stat().st_size // 2)
    with pytest.raises(DamagedError) as raised:
        PackReader(pack)
    assert str(raised.value) == (
        f"{pack}: damaged: not the bytes that stage 'pack@train' wrote (size or MD5 differ "
        "from dvc.lock); rebuild it with `dvc repro -f -s pack@train`, or put back DVC's "
        "copy with `rm data/train.h5 && dvc checkout data/train.h5`"
    )
    assert isinstance(raised.value, UserError)  # so stages print it as one line


def test_a_rewritten_file_is_checked_again(repo: Path) -> None:
    """Each version of a file is hashed once: a later change in the same process is seen."""
    read_json("data/means.json")
    (repo / "data/means.json").write_text('{"R": 9.0, "G": 2.0, "B": 3.0}\n')
    with pytest.raises(DamagedError, match=r"means\.json: damaged"):
        read_json("data/means.json")


def test_files_dvc_does_not_track_and_repos_without_a_lock_are_not_checked(
    repo: Path,
) -> None:
    write_json(repo / "data/other.json", {"x": 1})
    check_intact(repo / "data/other.json")  # not an output in the lock
    (repo / "dvc.lock").unlink()
    flip_one_byte(repo / "data/means.json", 3)
    check_intact(repo / "data/means.json")  # no lock: nothing to compare with


def test_a_missing_output_names_the_commands_that_bring_it_back(repo: Path) -> None:
    """A fresh clone has dvc.lock but none of DVC's files until `dvc pull`: a reader of one
    says which stage makes it and how to fetch or build it (a folder output's files too)."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text(encoding="utf-8"))
    lock["stages"]["logreg"] = {"cmd": "true", "outs": [{"path": "models/logreg.skops"}]}
    lock["stages"]["export"] = {"cmd": "true", "outs": [{"path": "models/export"}]}
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock), encoding="utf-8")
    (repo / "data/train.h5").unlink()
    with pytest.raises(UserError) as raised:
        PackReader("data/train.h5")
    assert str(raised.value) == (
        "data/train.h5: file not found; it is an output of stage 'pack@train': fetch it with "
        "`dvc pull data/train.h5` or build it with `dvc repro pack@train`"
    )
    with pytest.raises(UserError, match=r"`dvc pull models/logreg\.skops` .* `dvc repro logreg`"):
        read_entry(repo / "models/logreg.skops")
    with pytest.raises(UserError, match=r"`dvc pull models/export` .* `dvc repro export`$"):
        read_json("models/export/summary.json")
    with pytest.raises(UserError, match=r"^data/other\.json: file not found$"):
        read_json("data/other.json")  # not an output: nothing to suggest
