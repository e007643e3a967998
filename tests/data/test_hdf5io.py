"""HDF5 packs: round trip, atomic writes, identical bytes for identical inputs."""

import hashlib
from pathlib import Path

import h5py
import numpy as np
import pytest

from imgclf.core.errors import UserError
from imgclf.data.hdf5io import (
    IMAGES,
    PackReader,
    PackWriter,
    SplitPredictions,
    load_predictions,
    prediction_attrs,
    save_predictions,
)

NAMES = ["cat", "dög", "狐"]


def sample(count: int = 10) -> tuple[np.ndarray, list[int], list[str]]:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (count, 6, 5, 3), dtype=np.uint8)
    labels = [index % 3 for index in range(count)]
    paths = [f"{NAMES[label]}/ímage {index}.jpg" for index, label in enumerate(labels)]
    return images, labels, paths


def write(path: Path, count: int = 10, batch: int = 4) -> None:
    images, labels, paths = sample(count)
    with PackWriter(
        path, count, (6, 5, 3), NAMES, chunk_rows=batch, attrs={"split": "val"}
    ) as writer:
        for start in range(0, count, batch):
            end = start + batch
            writer.write(images[start:end], labels[start:end], paths[start:end])


def test_round_trip(tmp_path: Path) -> None:
    write(tmp_path / "pack.h5")
    images, labels, paths = sample()
    with PackReader(tmp_path / "pack.h5") as reader:
        assert len(reader) == 10 and reader.chunk_rows == 4
        np.testing.assert_array_equal(reader.images[:], images)
        assert reader.images.dtype == np.uint8 and reader.labels.dtype == np.int64
        assert reader.labels.tolist() == labels
        assert reader.label_names == NAMES and reader.paths == paths
        assert reader.attrs == {"split": "val"}
        chunks = list(reader.iter_chunks())
    assert [len(chunk) for chunk, _ in chunks] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([chunk for chunk, _ in chunks]), images)


def test_same_inputs_same_bytes(tmp_path: Path) -> None:
    write(tmp_path / "a.h5")
    write(tmp_path / "b.h5")
    digest = [hashlib.sha256((tmp_path / f"{name}.h5").read_bytes()).hexdigest() for name in "ab"]
    assert digest[0] == digest[1]


def test_incomplete_pack_leaves_no_file(tmp_path: Path) -> None:
    images, labels, paths = sample()
    with (
        pytest.raises(ValueError, match="only 4 of 10 rows"),
        PackWriter(tmp_path / "pack.h5", 10, (6, 5, 3), NAMES, 4) as writer,
    ):
        writer.write(images[:4], labels[:4], paths[:4])
    assert list(tmp_path.iterdir()) == []


def test_failure_inside_the_block_leaves_no_file(tmp_path: Path) -> None:
    with (
        pytest.raises(KeyboardInterrupt),
        PackWriter(tmp_path / "pack.h5", 10, (6, 5, 3), NAMES, 4),
    ):
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_overflow_is_refused(tmp_path: Path) -> None:
    images, labels, paths = sample(3)
    with (
        pytest.raises(ValueError, match="does not fit"),
        PackWriter(tmp_path / "pack.h5", 2, (6, 5, 3), NAMES, 4) as writer,
    ):
        writer.write(images, labels, paths)


def test_reader_rejects_other_files(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="file not found"):
        PackReader(tmp_path / "none.h5")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(UserError, match="not a readable HDF5 file"):
        PackReader(tmp_path / "text.h5")
    with h5py.File(tmp_path / "other.h5", "w") as handle:
        handle[IMAGES] = np.zeros((1, 2, 2, 3), np.uint8)
    with pytest.raises(UserError, match="missing labels, label_names, paths"):
        PackReader(tmp_path / "other.h5")


def test_predictions_keep_their_attributes(tmp_path: Path) -> None:
    split = SplitPredictions(np.eye(2, dtype=np.float32), np.array([0, 1]), ["a.png", "b.png"])
    path = tmp_path / "export.h5"
    save_predictions(path, {"test": split}, ["x", "y"], attrs={"source": "logreg", "crops": 1})
    assert prediction_attrs(path) == {"source": "logreg", "crops": 1}
    splits, names = load_predictions(path)
    assert names == ["x", "y"] and splits["test"].paths == split.paths
    with pytest.raises(UserError, match="file not found"):
        prediction_attrs(tmp_path / "missing.h5")
