"""Measure the audit's recall on planted duplicates and label errors, and how far each kind
of near-duplicate moves the perceptual hash.

1. A folder of smooth random images tinted by class (`tests/support/planted.py`, the helpers of
   tests/models/test_featureaudit.py) with every kind planted; prints the recall per kind
   and the clean images flagged, for the pHash pairs alone at 0, 2 and 4 bits and for the
   full audit (pHash + Datalab on 8x8-thumbnail features).
2. pHash distances (median, 90th percentile, max) between an image and its JPEG-30 re-encode,
   90 % centre crop, 2/3 size and +12 brightness copies, on synthetic photo-like images
   (bench/photos.py) and on the demo's 28-px images (data/sample/target).

Run from the repository root:

    .venv/bin/python bench/audit_recall.py [--per-class 100] [--each 10]
"""

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from photos import synthetic_photo

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from conftest import make_params
from imgclf.data.audit import audit_rows, hash_pairs, leak_rows
from imgclf.data.hashing import hamming, hash_values, perceptual_hash
from imgclf.data.indexing import build_index
from support.planted import KINDS, recall_and_false_flags, run_audit, write_planted_folder

CHANGES = {
    "jpeg30": lambda image: cv2.imdecode(
        cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 30])[1], cv2.IMREAD_UNCHANGED
    ),
    "crop90": lambda image: image[
        round(image.shape[0] * 0.05) : image.shape[0] - round(image.shape[0] * 0.05),
        round(image.shape[1] * 0.05) : image.shape[1] - round(image.shape[1] * 0.05),
    ],
    "size2/3": lambda image: cv2.resize(
        image, (image.shape[1] * 2 // 3, image.shape[0] * 2 // 3), interpolation=cv2.INTER_AREA
    ),
    "bright+12": lambda image: cv2.add(image, np.full_like(image, 12)),
}


def recall_table(per_class: int, each: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "images"
        planted = write_planted_folder(root, per_class=per_class, each=each)
        manifest = build_index(make_params(data={"source": str(root)}).data).manifest
        print(f"{len(manifest)} images, {each} of each kind planted")
        print(f"{'method':<22}" + "".join(f"{kind:>13}" for kind in KINDS) + "  clean flagged")
        for distance in (0, 2, 4):
            pairs = hash_pairs(manifest, distance)
            rows = audit_rows([pairs, leak_rows(pairs, manifest.assign(split="train"))])
            show(f"pHash pairs, {distance} bits", rows, planted, manifest)
        show("audit (0 bits+Datalab)", run_audit(root, manifest, 0), planted, manifest)


def show(name, rows, planted, manifest) -> None:
    recall, flagged = recall_and_false_flags(rows, planted, manifest)
    involved = {path for item in planted for path in (item.path, item.other)}
    clean = len(set(manifest["path"]) - involved)
    print(
        f"{name:<22}" + "".join(f"{recall[kind]:>13.2f}" for kind in KINDS), f" {flagged}/{clean}"
    )


def distances(images: list[np.ndarray], name: str) -> None:
    for change, function in CHANGES.items():
        values = [
            int(hamming(*hash_values([perceptual_hash(image), perceptual_hash(function(image))])))
            for image in images
        ]
        median, p90 = np.percentile(values, [50, 90])
        print(f"{name:<24}{change:>10}{median:>8.0f}{p90:>8.0f}{max(values):>6}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--each", type=int, default=10)
    args = parser.parse_args()
    recall_table(args.per_class, args.each)
    print(f"\npHash bits moved{'':<8}{'change':>10}{'median':>8}{'p90':>8}{'max':>6}")
    rng = np.random.default_rng(0)
    distances([synthetic_photo(rng, 500, 375) for _ in range(100)], "photos 500x375 (100)")
    demo = sorted(Path("data/sample/target").glob("*/*.png"))[::10]
    images = [cv2.imread(str(path), cv2.IMREAD_UNCHANGED) for path in demo]
    distances(images, f"demo 28x28 ({len(images)})")


if __name__ == "__main__":
    main()
