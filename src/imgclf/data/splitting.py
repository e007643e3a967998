"""Stratified, seeded train/val/test split of the manifest (scikit-learn)."""

import math

import pandas as pd
from sklearn.model_selection import train_test_split

from imgclf.config import SplitParams
from imgclf.errors import UserError

SPLITS = ("train", "val", "test")


def split_counts(total: int, params: SplitParams) -> dict[str, int]:
    """Number of images in each split: fractions are rounded, counts are taken as given."""
    val, test = (
        value if isinstance(value, int) else round(value * total)
        for value in (params.val, params.test)
    )
    return {"train": total - val - test, "val": val, "test": test}


def split_manifest(manifest: pd.DataFrame, params: SplitParams, seed: int) -> pd.DataFrame:
    """Return the manifest with a `split` column, sorted by path; every class in every split."""
    counts = split_counts(len(manifest), params)
    _check_class_sizes(manifest["label"].value_counts(), counts, params)
    rest, test = train_test_split(
        manifest, test_size=counts["test"], random_state=seed, stratify=manifest["label"]
    )
    train, val = train_test_split(
        rest, test_size=counts["val"], random_state=seed, stratify=rest["label"]
    )
    parts = [
        frame.assign(split=name) for name, frame in zip(SPLITS, (train, val, test), strict=True)
    ]
    splits = pd.concat(parts).sort_values("path", kind="stable").reset_index(drop=True)
    _check_every_class_everywhere(splits, params)
    return splits


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
    train, held_out = train_test_split(
        manifest, test_size=val, random_state=seed, stratify=manifest["label"]
    )
    parts = [train.assign(split="train"), held_out.assign(split="val")]
    return pd.concat(parts).sort_values("path", kind="stable").reset_index(drop=True)
