"""A class folder with planted duplicates and label errors, and the audit's recall on it.

Clean images are smooth random pictures tinted by class. Planted, each from its own clean
image: exact copies (same pixels, BMP under another name), near-duplicates (JPEG at quality
30, a 90 % centre crop, half size, 12 levels brighter), copies in another class folder
(conflicting labels), and images of one class filed under another (label errors).
"""

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from imgclf.data.audit import audit_rows, hash_pairs, leak_rows
from imgclf.data.hdf5io import Features
from imgclf.data.imaging import read_image
from imgclf.models.featureaudit import datalab_rows, out_of_fold_probabilities

CLASSES = ("cat", "dog", "fox")
TINTS = {"cat": (60, 0, 0), "dog": (0, 60, 0), "fox": (0, 0, 60)}  # BGR
PAIR_KINDS = ("exact", "jpeg", "crop", "resize", "brighter", "cross_class")
KINDS = (*PAIR_KINDS, "mislabelled")


@dataclass(frozen=True)
class Planted:
    kind: str
    path: str  # the planted file
    other: str  # the clean image it copies ("" for a mislabelled image)


def smooth_image(seed: int, label: str, width: int = 64, height: int = 48) -> np.ndarray:
    """A BGR picture of smooth random shapes, tinted by class, with a little noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 196, (6, 8, 3), dtype=np.uint8)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    image = cv2.add(image, np.full_like(image, TINTS[label]))
    return cv2.add(image, rng.integers(0, 6, image.shape, dtype=np.uint8))


def _variant(kind: str, image: np.ndarray) -> tuple[np.ndarray, str, list[int]]:
    height, width = image.shape[:2]
    if kind == "jpeg":
        return image, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 30]
    if kind == "crop":
        dy, dx = round(height * 0.05), round(width * 0.05)
        return image[dy : height - dy, dx : width - dx], ".png", []
    if kind == "resize":
        return (
            cv2.resize(image, (width // 2, height // 2), interpolation=cv2.INTER_AREA),
            ".png",
            [],
        )
    if kind == "brighter":
        return cv2.add(image, np.full_like(image, 12)), ".png", []
    return image, ".bmp", []  # exact, cross_class: the same pixels in another format


def write_planted_folder(root: Path, per_class: int = 20, each: int = 3) -> list[Planted]:
    """Write the folder; return what was planted (`each` of every kind)."""
    sources: list[tuple[str, str, np.ndarray]] = []
    for label_index, label in enumerate(CLASSES):
        (root / label).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            image = smooth_image(label_index * 1000 + index, label)
            path = f"{label}/{label}_{index:03d}.png"
            cv2.imwrite(str(root / path), image)
            sources.append((path, label, image))
    planted, used = [], 0
    for kind in PAIR_KINDS:
        for number in range(each):
            # 7 is prime to the count of sources: distinct sources, spread over the classes.
            path, label, image = sources[used * 7 % len(sources)]
            used += 1
            target = CLASSES[(CLASSES.index(label) + 1) % 3] if kind == "cross_class" else label
            pixels, extension, options = _variant(kind, image)
            copy = f"{target}/{kind}_{number}{extension}"
            cv2.imwrite(str(root / copy), pixels, options)
            planted.append(Planted(kind, copy, path))
    for number in range(each):
        label = CLASSES[number % 3]
        wrong = CLASSES[(number + 1) % 3]
        path = f"{wrong}/mislabelled_{number}.png"
        cv2.imwrite(str(root / path), smooth_image(50_000 + number, label))
        planted.append(Planted("mislabelled", path, ""))
    return planted


def thumbnail_features(root: Path, paths: list[str]) -> np.ndarray:
    """8x8 RGB thumbnails in [0, 1]: a cheap stand-in for the backbone's features."""
    return (
        np.stack(
            [
                cv2.resize(read_image(root / path), (8, 8), interpolation=cv2.INTER_AREA).ravel()
                for path in paths
            ]
        ).astype(np.float32)
        / 255
    )


def run_audit(
    root: Path, manifest: pd.DataFrame, near_distance: int, splits: list[str] | None = None
) -> pd.DataFrame:
    """The audit stage's computation, with thumbnails for features, and each image's split
    (all train unless `splits` says)."""
    names = sorted(manifest["label"].unique())
    data = Features(
        features=thumbnail_features(root, list(manifest["path"])),
        labels=manifest["label"].map(names.index).to_numpy(np.int64),
        label_names=names,
        paths=list(manifest["path"]),
        attrs={},
    )
    probabilities = out_of_fold_probabilities(data, C=1.0, folds=3, max_iter=1000, seed=0)
    model_rows, _ = datalab_rows(data, probabilities, near_threshold=0.13)
    pairs = hash_pairs(manifest, near_distance)
    duplicates = audit_rows([pairs, model_rows[model_rows["issue"] == "near_duplicate"]])
    leaks = leak_rows(duplicates, manifest.assign(split=splits or "train"))
    return audit_rows([pairs, model_rows, leaks])


def recall_and_false_flags(
    rows: pd.DataFrame, planted: list[Planted], manifest: pd.DataFrame
) -> tuple[dict[str, float], int]:
    """Recall per planted kind, and how many clean images any row names."""
    linked = {
        (issue, frozenset((path, other)))
        for issue, path, other in zip(rows["issue"], rows["path"], rows["other"], strict=True)
    }

    def found(item: Planted) -> bool:
        pair = frozenset((item.path, item.other))
        if item.kind == "mislabelled":
            return ("label_error", frozenset((item.path, ""))) in linked
        if item.kind == "cross_class":
            return ("conflicting_label", pair) in linked
        return any((issue, pair) in linked for issue in ("exact_duplicate", "near_duplicate"))

    recall = {
        kind: float(np.mean([found(item) for item in planted if item.kind == kind]))
        for kind in KINDS
    }
    involved = {path for item in planted for path in (item.path, item.other)}
    clean = set(manifest["path"]) - involved
    flagged = (set(rows["path"]) | set(rows["other"])) & clean
    return recall, len(flagged)
