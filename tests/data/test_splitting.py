"""Stage split: stratified, seeded, disjoint, and clear about classes that are too small."""

import numpy as np
import pandas as pd
import pytest

from imgclf.core.config import SplitParams
from imgclf.core.errors import UserError
from imgclf.data.splitting import group_ids, split_counts, split_manifest, split_mode


def split_params(val: float, test: float) -> SplitParams:
    return SplitParams(val=val, test=test, group_duplicates=True, near_distance=0)


def manifest(sizes: dict[str, int]) -> pd.DataFrame:
    rows = [
        (f"{label}/{index:04d}.jpg", label, 10, 10)
        for label, size in sizes.items()
        for index in range(size)
    ]
    return pd.DataFrame(rows, columns=["path", "label", "width", "height"])


def test_stratified_disjoint_and_complete() -> None:
    frame = manifest({"a": 100, "b": 60, "c": 40})
    splits = split_manifest(frame, split_params(val=0.15, test=0.15), seed=1)
    assert sorted(splits["path"]) == sorted(frame["path"])  # every image exactly once
    assert splits["path"].is_unique and splits["path"].is_monotonic_increasing
    counts = splits.groupby(["split", "label"]).size().unstack()
    assert counts.loc["test"].tolist() == [15, 9, 6]
    assert counts.loc["val"].tolist() == [15, 9, 6]
    assert counts.loc["train"].tolist() == [70, 42, 28]


def test_same_seed_same_split_other_seed_other_split() -> None:
    frame = manifest({"a": 50, "b": 50})
    params = split_params(val=0.2, test=0.2)
    first = split_manifest(frame, params, seed=7)
    pd.testing.assert_frame_equal(
        first,
        split_manifest(frame.sample(frac=1, random_state=3).sort_values("path"), params, seed=7),
    )
    assert not first["split"].equals(split_manifest(frame, params, seed=8)["split"])


def test_absolute_counts() -> None:
    splits = split_manifest(manifest({"a": 30, "b": 30}), split_params(val=10, test=6), seed=0)
    assert splits["split"].value_counts().to_dict() == {"train": 44, "val": 10, "test": 6}
    assert split_counts(60, split_params(val=10, test=0.1)) == {"train": 44, "val": 10, "test": 6}


def test_small_class_fails_naming_class_and_count() -> None:
    with pytest.raises(UserError, match=r"class 'rare' has 3 images.*at least 7"):
        split_manifest(manifest({"common": 100, "rare": 3}), split_params(0.15, 0.15), seed=0)


def test_counts_larger_than_dataset_fail() -> None:
    with pytest.raises(UserError, match="train split would be empty"):
        split_manifest(manifest({"a": 10, "b": 10}), split_params(val=10, test=10), seed=0)


def test_fewer_val_images_than_classes_fail() -> None:
    with pytest.raises(UserError, match="at least one image per class"):
        split_manifest(manifest({k: 40 for k in "abcde"}), split_params(val=3, test=50), seed=0)


def test_duplicate_groups_never_straddle_two_splits() -> None:
    frame = manifest({"a": 120, "b": 80, "c": 60})
    # Planted groups of 2-5 copies, one of them across classes (a conflicting label).
    groups = np.arange(len(frame))
    rng = np.random.default_rng(0)
    for start in rng.choice(len(frame) - 5, size=30, replace=False):
        groups[start : start + rng.integers(2, 6)] = groups[start]
    splits = split_manifest(frame, split_params(0.15, 0.15), seed=3, groups=groups)
    assert sorted(splits["path"]) == sorted(frame["path"])
    per_group = pd.Series(splits.set_index("path").loc[frame["path"], "split"].to_numpy())
    assert per_group.groupby(groups).nunique().max() == 1
    assert (per_group.groupby(groups).size() > 1).sum() >= 20  # the planted groups survive
    # Still stratified and close to the asked sizes: 39 val and test images of 260.
    counts = splits["split"].value_counts()
    assert abs(counts["test"] - 39) <= 8 and abs(counts["val"] - 39) <= 8
    assert splits.groupby("split")["label"].nunique().min() == 3
    # The ids travel in splits.csv, for cross-validation on train to keep the groups whole.
    by_path = splits.set_index("path")["group"]
    assert (by_path.loc[frame["path"]].to_numpy() == groups).all()
    paths = list(frame["path"][:5])
    assert (group_ids(splits, paths, "splits.csv") == groups[:5]).all()
    with pytest.raises(UserError, match=r"splits\.csv: no row for x\.jpg"):
        group_ids(splits, ["x.jpg"], "splits.csv")


def test_singleton_groups_give_the_ungrouped_split() -> None:
    frame = manifest({"a": 50, "b": 30}).assign(pixel_hash="x", phash="y")
    params = split_params(0.2, 0.2)
    grouped = split_manifest(frame, params, seed=5, groups=np.arange(len(frame)))
    pd.testing.assert_frame_equal(grouped, split_manifest(frame, params, seed=5))
    assert "pixel_hash" not in grouped.columns and "phash" not in grouped.columns
    assert "group" not in grouped.columns  # no group of two: splits.csv keeps its bytes
    assert group_ids(grouped, list(grouped["path"]), "splits.csv") is None


def predefined(sizes: dict[str, dict[str, int]]) -> pd.DataFrame:
    frames = [manifest(per_class).assign(split=split) for split, per_class in sizes.items()]
    frame = pd.concat(frames, ignore_index=True)
    frame["path"] = frame["split"] + "/" + frame["path"]
    return frame


def test_predefined_splits_are_kept() -> None:
    frame = predefined(
        {"train": {"a": 20, "b": 10}, "val": {"a": 3, "b": 2}, "test": {"a": 4, "b": 4}}
    )
    splits = split_manifest(frame, split_params(0.15, 0.15), seed=0)
    assert splits["split"].tolist() == [path.split("/")[0] for path in splits["path"]]
    assert split_mode(frame) == "predefined"
    assert split_mode(frame.drop(columns="split")) == "random"


def test_val_carved_from_train_stratified_seeded_and_grouped() -> None:
    frame = predefined({"train": {"a": 60, "b": 40}, "test": {"a": 10, "b": 10}})
    assert split_mode(frame) == "predefined, val from train"
    groups = np.arange(len(frame))
    groups[1:4] = 0  # a group of four train images
    splits = split_manifest(frame, split_params(0.2, 0.15), seed=1, groups=groups)
    by_path = splits.set_index("path")["split"]
    assert (by_path[frame["path"][frame["split"] == "test"]] == "test").all()
    val = splits[splits["split"] == "val"]
    assert 17 <= len(val) <= 23 and val["path"].str.startswith("train/").all()
    # 19 of 97 groups, stratified: 11 of a's 57 (one of them the four), 8 of b's 40.
    assert val["label"].value_counts().to_dict() in ({"a": 11, "b": 8}, {"a": 14, "b": 8})
    assert by_path[frame["path"][:4]].nunique() == 1
    again = split_manifest(frame, split_params(0.2, 0.15), seed=1, groups=groups)
    pd.testing.assert_frame_equal(splits, again)


def test_predefined_without_test_fails() -> None:
    frame = predefined({"train": {"a": 20, "b": 10}})
    with pytest.raises(UserError, match="needs train and test images; the source has only train"):
        split_manifest(frame, split_params(0.15, 0.15), seed=0)
