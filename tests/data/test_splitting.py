"""Stage split: stratified, seeded, disjoint, and clear about classes that are too small."""

import pandas as pd
import pytest

from imgclf.config import SplitParams
from imgclf.data.splitting import split_counts, split_manifest
from imgclf.errors import UserError


def manifest(sizes: dict[str, int]) -> pd.DataFrame:
    rows = [
        (f"{label}/{index:04d}.jpg", label, 10, 10)
        for label, size in sizes.items()
        for index in range(size)
    ]
    return pd.DataFrame(rows, columns=["path", "label", "width", "height"])


def test_stratified_disjoint_and_complete() -> None:
    frame = manifest({"a": 100, "b": 60, "c": 40})
    splits = split_manifest(frame, SplitParams(val=0.15, test=0.15), seed=1)
    assert sorted(splits["path"]) == sorted(frame["path"])  # every image exactly once
    assert splits["path"].is_unique and splits["path"].is_monotonic_increasing
    counts = splits.groupby(["split", "label"]).size().unstack()
    assert counts.loc["test"].tolist() == [15, 9, 6]
    assert counts.loc["val"].tolist() == [15, 9, 6]
    assert counts.loc["train"].tolist() == [70, 42, 28]


def test_same_seed_same_split_other_seed_other_split() -> None:
    frame = manifest({"a": 50, "b": 50})
    params = SplitParams(val=0.2, test=0.2)
    first = split_manifest(frame, params, seed=7)
    pd.testing.assert_frame_equal(
        first,
        split_manifest(frame.sample(frac=1, random_state=3).sort_values("path"), params, seed=7),
    )
    assert not first["split"].equals(split_manifest(frame, params, seed=8)["split"])


def test_absolute_counts() -> None:
    splits = split_manifest(manifest({"a": 30, "b": 30}), SplitParams(val=10, test=6), seed=0)
    assert splits["split"].value_counts().to_dict() == {"train": 44, "val": 10, "test": 6}
    assert split_counts(60, SplitParams(val=10, test=0.1)) == {"train": 44, "val": 10, "test": 6}


def test_small_class_fails_naming_class_and_count() -> None:
    with pytest.raises(UserError, match=r"class 'rare' has 3 images.*at least 7"):
        split_manifest(manifest({"common": 100, "rare": 3}), SplitParams(0.15, 0.15), seed=0)


def test_counts_larger_than_dataset_fail() -> None:
    with pytest.raises(UserError, match="train split would be empty"):
        split_manifest(manifest({"a": 10, "b": 10}), SplitParams(val=10, test=10), seed=0)


def test_fewer_val_images_than_classes_fail() -> None:
    with pytest.raises(UserError, match="at least one image per class"):
        split_manifest(manifest({k: 40 for k in "abcde"}), SplitParams(val=3, test=50), seed=0)
