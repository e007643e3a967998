"""Stratified, seeded train/val/test split of the manifest (scikit-learn), keeping groups of
duplicate images together when asked."""

import math

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from imgclf.core.config import SplitParams
from imgclf.core.errors import UserError

SPLITS = ("train", "val", "test")
# The manifest's pixel fingerprints stay out of splits.csv: pack does not need them, and the
# splits of a folder without duplicates keep the bytes they had before index recorded them.
FINGERPRINT_COLUMNS = ["pixel_hash", "phash"]


def split_counts(total: int, params: SplitParams) -> dict[str, int]:
    """Number of images in each split: fractions are rounded, counts are taken as given."""
    val, test = (
        value if isinstance(value, int) else round(value * total)
        for value in (params.val, params.test)
    )
    return {"train": total - val - test, "val": val, "test": test}


def split_manifest(
    manifest: pd.DataFrame, params: SplitParams, seed: int, groups: np.ndarray | None = None
) -> pd.DataFrame:
    """Return the manifest with a `split` column, sorted by path; every class in every split.

    Images sharing a `groups` id (one per manifest row) land in the same split, and when a
    group holds two images or more the result keeps the ids as a `group` column, so that
    cross-validation on train (logreg, audit) keeps them whole too. Without such groups this
    is the plain stratified split, image for image. A manifest with a `split` column
    (data.predefined) keeps it; without val images, val is carved from train (split.val of
    it, stratified, seeded, groups kept whole).
    """
    manifest = manifest.drop(columns=FINGERPRINT_COLUMNS, errors="ignore")
    if groups is not None and len(np.unique(groups)) < len(manifest):
        manifest = manifest.assign(group=groups)
    if "split" in manifest.columns:
        splits = _carve_val(manifest, params, seed, groups)
        splits = splits.sort_values("path", kind="stable").reset_index(drop=True)
        _check_every_class_everywhere(splits, params)
        return splits
    counts = split_counts(len(manifest), params)
    _check_class_sizes(manifest["label"].value_counts(), counts, params)
    if groups is not None and len(np.unique(groups)) < len(manifest):
        splits = _split_groups(manifest, groups, counts, seed)
    else:
        splits = _split_images(manifest, counts, seed)
    splits = splits.sort_values("path", kind="stable").reset_index(drop=True)
    _check_every_class_everywhere(splits, params)
    return splits


def _split_images(manifest: pd.DataFrame, counts: dict[str, int], seed: int) -> pd.DataFrame:
    rest, test = train_test_split(
        manifest, test_size=counts["test"], random_state=seed, stratify=manifest["label"]
    )
    train, val = train_test_split(
        rest, test_size=counts["val"], random_state=seed, stratify=rest["label"]
    )
    parts = (train, val, test)
    return pd.concat(frame.assign(split=name) for name, frame in zip(SPLITS, parts, strict=True))


def _split_groups(
    manifest: pd.DataFrame, groups: np.ndarray, counts: dict[str, int], seed: int
) -> pd.DataFrame:
    """Split whole groups, stratified by each group's most common label (ties: the first
    name), with as many groups per split as the image counts ask for in proportion."""
    labels = manifest.assign(group=groups).groupby("group")["label"]
    group_frame = labels.agg(_majority_label)
    group_frame = group_frame.rename("label").reset_index()
    scale = len(group_frame) / len(manifest)
    group_counts = {name: max(1, round(count * scale)) for name, count in counts.items()}
    split_of = _split_images(group_frame, group_counts, seed).set_index("group")["split"]
    return manifest.assign(split=split_of.loc[groups].to_numpy())


def group_ids(splits: pd.DataFrame, paths: list[str], source: object) -> np.ndarray | None:
    """The duplicate-group id of each of `paths` from splits.csv (`source`), or None when
    the split found no group of two images or more (every image is its own group)."""
    if "group" not in splits.columns:
        return None
    ids = splits.set_index("path")["group"]
    missing = [path for path in paths if path not in ids.index]
    if missing:
        raise UserError(
            f"{source}: no row for {missing[0]} (and {len(missing) - 1} more) of the features; "
            "rerun the split and features stages (dvc repro)"
        )
    return ids.loc[paths].to_numpy()


def split_mode(manifest: pd.DataFrame) -> str:
    """How `split_manifest` splits this manifest, for metrics/split.json."""
    if "split" not in manifest.columns:
        return "random"
    return "predefined" if (manifest["split"] == "val").any() else "predefined, val from train"


def _carve_val(
    manifest: pd.DataFrame, params: SplitParams, seed: int, groups: np.ndarray | None
) -> pd.DataFrame:
    given = set(manifest["split"])
    if not {"train", "test"} <= given:
        raise UserError(
            f"split: data.predefined needs train and test images; the source has only "
            f"{', '.join(sorted(given))}"
        )
    if "val" in given:
        return manifest
    train = (manifest["split"] == "train").to_numpy()
    count = params.val if isinstance(params.val, int) else round(params.val * train.sum())
    ids = groups[train] if groups is not None else np.flatnonzero(train)
    frame = manifest[train].assign(group=ids)
    majority = frame.groupby("group")["label"].agg(_majority_label)
    held_count = max(1, round(count * len(majority) / train.sum()))
    if held_count >= len(majority) or held_count < majority.nunique():
        raise UserError(
            f"split: cannot carve {count} val images with every class from "
            f"{int(train.sum())} train images; change split.val (now {params.val})"
        )
    _, held = train_test_split(
        majority.index, test_size=held_count, random_state=seed, stratify=majority.to_numpy()
    )
    carved = manifest.copy()
    carved.loc[frame.index[frame["group"].isin(held)], "split"] = "val"
    return carved


def _majority_label(labels: pd.Series) -> str:
    """A group's most common label; ties go to the first name."""
    return labels.value_counts().sort_index().idxmax()


def _check_class_sizes(
    class_sizes: pd.Series, counts: dict[str, int], params: SplitParams
) -> None:
    """Fail, naming the class, when a class is too small to appear in every split."""
    total = int(class_sizes.sum())
    smallest_share = min(counts.values()) / total
    if smallest_share <= 0:
        empty = min(counts, key=counts.get)
        raise UserError(
            f"split: the {empty} split would be empty ({counts}); lower "
            f"split.val/split.test (now {params.val}/{params.test})"
        )
    if counts["test"] < len(class_sizes) or counts["val"] < len(class_sizes):
        raise UserError(
            f"split: val and test need at least one image per class "
            f"({len(class_sizes)} classes); got {counts}"
        )
    needed = math.ceil(1 / smallest_share)
    label, size = min(class_sizes.items(), key=lambda item: (item[1], item[0]))
    if size < needed:
        raise UserError(
            f"split: class {label!r} has {size} images; with split.val = "
            f"{params.val} and split.test = {params.test} every class needs at "
            f"least {needed} (add images, drop the class, or change the split)"
        )


def _check_every_class_everywhere(splits: pd.DataFrame, params: SplitParams) -> None:
    present = splits.groupby("split")["label"].nunique()
    classes = splits["label"].nunique()
    for name in SPLITS:
        if present.get(name, 0) < classes:
            missing = sorted(set(splits["label"]) - set(splits.loc[splits.split == name, "label"]))
            raise UserError(
                f"split: class {missing[0]!r} got no {name} image with "
                f"split.val = {params.val}, split.test = {params.test}; "
                f"it needs more images"
            )


def split_train_val(manifest: pd.DataFrame, val: float, seed: int) -> pd.DataFrame:
    """The manifest with a `split` column of train and val only (a stratified, seeded
    fraction `val`), sorted by path: the backbone's pretraining folder needs no test split."""
    manifest = manifest.drop(columns=FINGERPRINT_COLUMNS, errors="ignore")
    train, held_out = train_test_split(
        manifest, test_size=val, random_state=seed, stratify=manifest["label"]
    )
    parts = [train.assign(split="train"), held_out.assign(split="val")]
    return pd.concat(parts).sort_values("path", kind="stable").reset_index(drop=True)
