"""The audit on a folder with planted duplicates and label errors: it finds every planted
kind and flags no clean image (thumbnails stand in for the backbone's features)."""

from pathlib import Path

import numpy as np

from conftest import make_params
from imgclf.data.indexing import build_index
from imgclf.models.featureaudit import (
    LabelledFeatures,
    datalab_rows,
    load_labelled_features,
    out_of_fold_probabilities,
)
from planted import KINDS, recall_and_false_flags, run_audit, write_planted_folder


def test_audit_finds_every_planted_kind_and_no_clean_image(tmp_path: Path) -> None:
    root = tmp_path / "images"
    planted = write_planted_folder(root, per_class=20, each=3)
    manifest = build_index(make_params(data={"source": str(root)}).data).manifest
    rows = run_audit(root, manifest, near_distance=0)
    recall, false_flags = recall_and_false_flags(rows, planted, manifest)
    assert recall == dict.fromkeys(KINDS, 1.0)
    assert false_flags == 0


def test_label_errors_come_with_the_suggested_class() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 30)
    features = (np.eye(3)[labels] * 4 + rng.normal(0, 0.5, (90, 3))).astype(np.float32)
    given = labels.copy()
    given[[5, 40]] = [2, 0]  # a 0 filed as 2, a 1 filed as 0
    data = LabelledFeatures(features, given, [f"img{i:02d}" for i in range(90)], ["x", "y", "z"])
    probabilities = out_of_fold_probabilities(data, C=1.0, folds=3, max_iter=500, seed=0)
    assert probabilities.shape == (90, 3) and np.allclose(probabilities.sum(axis=1), 1)
    rows, counts = datalab_rows(data, probabilities, near_threshold=0.13)
    errors = rows[rows["issue"] == "label_error"]
    assert dict(zip(errors["path"], errors["suggested"], strict=True)) == {
        "img05": "x",
        "img40": "y",
    }
    assert counts["datalab_label"] == 2
    again, _ = datalab_rows(data, probabilities, near_threshold=0.13)
    assert again.equals(rows)  # seeded and exact: the same rows every run


def test_features_of_every_split_in_order(tmp_path: Path) -> None:
    from imgclf.data.hdf5io import FEATURES, PackWriter

    for split, count in (("train", 3), ("test", 2)):
        path = tmp_path / f"{split}.h5"
        with PackWriter(
            path, count, (4,), ["x", "y"], 8, key=FEATURES, dtype=np.float32
        ) as writer:
            writer.write(
                np.full((count, 4), count, np.float32),
                np.arange(count) % 2,
                [f"{split}/{i}" for i in range(count)],
            )
    data = load_labelled_features([tmp_path / "train.h5", tmp_path / "test.h5"])
    assert data.paths == ["train/0", "train/1", "train/2", "test/0", "test/1"]
    assert data.features.shape == (5, 4) and data.labels.tolist() == [0, 1, 0, 0, 1]
