"""What the audit finds from the manifest alone: duplicate pairs, class balance, image sizes.

Pairs come from the hashes `index` records (hashing.py): the same pixels, or perceptual
hashes within a few bits. Each pair is listed once (path < other) under its kind, and again
as `conflicting_label` when its two images carry different labels and as `split_leak` when
they sit in different splits: a test image whose copy is trained on inflates every score.
The audit's rows share one shape: path, issue, score, other (the pair's other file), and
suggested (the label a model proposes, for label errors). Scores follow cleanlab's
convention, lower is more certainly an issue: for a hash pair, its Hamming distance / 64.
"""

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from imgclf.core.errors import UserError
from imgclf.data.hashing import HASH_BITS, hash_values, near_pairs

AUDIT_COLUMNS = ["path", "issue", "score", "other", "suggested"]
PAIR_ISSUES = ("exact_duplicate", "near_duplicate")
LEAK_ISSUES = ("conflicting_label", "split_leak")
log = logging.getLogger("imgclf.audit")


def hash_pairs(images: pd.DataFrame, max_distance: int) -> pd.DataFrame:
    """(path, other, issue, score) of every pair of images with the same pixels or
    perceptual hashes within `max_distance` bits; `images` has path, pixel_hash, phash."""
    images = images.sort_values("path").reset_index(drop=True)
    # Same pixels give the same perceptual hash, so exact copies are among the near pairs.
    first, second, bits = near_pairs(hash_values(images["phash"]), max_distance).T
    pixel, paths = images["pixel_hash"].to_numpy(), images["path"].to_numpy()
    same = pixel[first] == pixel[second]
    return pd.DataFrame(
        {
            "path": paths[first],
            "other": paths[second],
            "issue": np.where(same, "exact_duplicate", "near_duplicate"),
            "score": np.where(same, 0.0, bits / HASH_BITS),
        }
    )


def leak_rows(pairs: pd.DataFrame, splits: pd.DataFrame) -> pd.DataFrame:
    """For duplicate `pairs` (path, other, score), a `conflicting_label` row where the two
    labels differ and a `split_leak` row where the two splits differ."""
    facts = splits.set_index("path")
    rows = []
    for issue, column in (("conflicting_label", "label"), ("split_leak", "split")):
        differ = (
            facts.loc[pairs["path"], column].to_numpy()
            != facts.loc[pairs["other"], column].to_numpy()
        )
        rows.append(pairs.loc[differ, ["path", "other", "score"]].assign(issue=issue))
    return pd.concat(rows, ignore_index=True)


def audit_rows(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Every issue row in AUDIT_COLUMNS, one per (path, issue, other) with its lowest score,
    sorted by issue, score and path so that the same findings give the same bytes."""
    rows = pd.concat(frames, ignore_index=True).reindex(columns=AUDIT_COLUMNS)
    rows["other"] = rows["other"].fillna("")
    rows["suggested"] = rows["suggested"].fillna("")
    rows["score"] = rows["score"].astype(float).round(6)
    rows = rows.sort_values(["issue", "score", "path", "other"], kind="stable")
    rows = rows.drop_duplicates(["path", "issue", "other"])
    # A pair with the same pixels is near as well (Datalab finds it too): list it once.
    exact = rows.loc[rows["issue"] == "exact_duplicate", ["path", "other"]]
    exact_pairs = set(zip(exact["path"], exact["other"], strict=True))
    pairs = zip(rows["path"], rows["other"], strict=True)
    listed = np.array([pair in exact_pairs for pair in pairs], dtype=bool)
    also_exact = listed & (rows["issue"] == "near_duplicate").to_numpy()
    return rows[~also_exact].reset_index(drop=True)


def issue_counts(rows: pd.DataFrame, issues: list[str]) -> dict[str, int]:
    """Rows per issue, zero included, for metrics/audit.json."""
    counts = rows["issue"].value_counts()
    return {issue: int(counts.get(issue, 0)) for issue in issues}


def dataset_facts(splits: pd.DataFrame) -> dict[str, float | int]:
    """Class balance and the spread of image sizes and aspect ratios (width / height)."""
    per_class = splits["label"].value_counts()
    width = splits["width"].astype(int)
    height = splits["height"].astype(int)
    facts: dict[str, float | int] = {
        "classes": len(per_class),
        "class_min": int(per_class.min()),
        "class_max": int(per_class.max()),
        "imbalance_ratio": round(float(per_class.max() / per_class.min()), 4),
    }
    for name, values in (("width", width), ("height", height), ("aspect", width / height)):
        for quantile, label in ((0.0, "min"), (0.5, "median"), (1.0, "max")):
            facts[f"{name}_{label}"] = round(float(values.quantile(quantile)), 4)
    return facts


def check_leaks(counts: dict[str, int], listed_in: Path, on_leak: str) -> None:
    """Fail (`audit.on_leak: fail`) or warn when duplicates cross classes or splits."""
    leaks = {issue: counts[issue] for issue in LEAK_ISSUES if counts[issue]}
    if not leaks:
        return
    message = (
        f"duplicate pairs across classes or splits ({leaks}); listed in {listed_in} "
        f"(audit.on_leak = {on_leak})"
    )
    if on_leak == "fail":
        raise UserError(message)
    log.warning(message)
