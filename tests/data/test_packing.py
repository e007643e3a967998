"""Stage pack: contents match the source images, seeded order, atomic, parallel = serial."""

import hashlib
from pathlib import Path

import numpy as np
import pytest

from imgclf.core.errors import UserError
from imgclf.data.hdf5io import PackReader
from imgclf.data.imaging import jpeg_reduction, load_resized
from imgclf.data.packing import _rebatch, pack_split
from support.packs import PACKED_SIZE, folder_splits, pack_folder
from support.params import make_params


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_pack_matches_source_images(image_folder: Path, tmp_path: Path) -> None:
    splits = folder_splits(image_folder)
    count = pack_folder(image_folder, tmp_path / "train.h5")
    expected = splits[splits["split"] == "train"]
    assert count == len(expected) == 12
    with PackReader(tmp_path / "train.h5") as reader:
        assert reader.images.shape == (12, *PACKED_SIZE, 3) and reader.chunk_rows == 5
        assert reader.label_names == ["cat", "dog", "fox"]
        assert sorted(reader.paths) == sorted(expected["path"])
        assert reader.paths != sorted(reader.paths)  # seeded shuffle, not class-grouped
        rows = expected.set_index("path")
        reduced = 0
        for index, path in enumerate(reader.paths):
            row = rows.loc[path]
            assert reader.label_names[reader.labels[index]] == row.label
            # Large JPEGs are decoded at reduced size, close to the full decode.
            reduce = jpeg_reduction(int(row.width), int(row.height), PACKED_SIZE)
            reduced += reduce > 1
            stored = reader.images[index]
            np.testing.assert_array_equal(
                stored, load_resized(image_folder / path, PACKED_SIZE, reduce=reduce)
            )
            full = load_resized(image_folder / path, PACKED_SIZE).astype(int)
            assert np.abs(stored - full).mean() < 6
        assert reduced > 0


def test_parallel_equals_serial_and_reruns_are_identical(
    image_folder: Path, tmp_path: Path
) -> None:
    pack_folder(image_folder, tmp_path / "serial.h5", workers=1)
    pack_folder(image_folder, tmp_path / "parallel.h5", workers=2)
    pack_folder(image_folder, tmp_path / "again.h5", workers=2)
    assert digest(tmp_path / "serial.h5") == digest(tmp_path / "parallel.h5")
    assert digest(tmp_path / "parallel.h5") == digest(tmp_path / "again.h5")


def test_seed_changes_only_the_order(image_folder: Path, tmp_path: Path) -> None:
    pack_folder(image_folder, tmp_path / "a.h5", seed=0)
    pack_folder(image_folder, tmp_path / "b.h5", seed=1)
    with PackReader(tmp_path / "a.h5") as first, PackReader(tmp_path / "b.h5") as second:
        assert first.paths != second.paths and sorted(first.paths) == sorted(second.paths)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # Same size, other bytes: the hash that index recorded catches it.
        (
            lambda path: path.write_bytes(bytes(255 - byte for byte in path.read_bytes())),
            r"its content changed after `index` read it; run `dvc repro` again",
        ),
        (lambda path: path.write_bytes(b"broken"), r"its content changed after `index`"),
        (lambda path: path.unlink(), r"cannot read file \(No such file or directory\)"),
    ],
    ids=["edited", "broken", "removed"],
)
def test_image_changed_after_indexing_fails_cleanly(
    image_folder: Path, tmp_path: Path, change, expected: str
) -> None:
    splits = folder_splits(image_folder)
    victim = splits[splits["split"] == "val"]["path"].iloc[0]
    change(image_folder / victim)
    params = make_params(pack={"batch_size": 2}).pack
    with pytest.raises(UserError, match=f"{victim}: {expected}"):
        pack_split(splits, "val", image_folder, tmp_path / "val.h5", PACKED_SIZE, params, 0, 2)
    assert list(tmp_path.glob("*val.h5*")) == []


def test_rebatch_gives_whole_blocks() -> None:
    parts = [np.full((size, 1), size) for size in (3, 1, 7, 2, 4)]  # 17 rows
    blocks = list(_rebatch(iter(parts), 5))
    assert [len(block) for block in blocks] == [5, 5, 5, 2]
    np.testing.assert_array_equal(np.concatenate(blocks), np.concatenate(parts))
