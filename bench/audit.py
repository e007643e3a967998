"""Benchmark: how the audit scales with the number of images (time and peak memory).

For each size, a child process builds a synthetic dataset the way the audit sees it: a
64-bit perceptual hash and a pixel hash per image (random, with 1 % exact copies and 3 %
near copies 1 to 4 bits away planted), and backbone-like features (Gaussian class clusters,
the copies a small step from their originals). It then times, each phase once:

- groups: `hashing.duplicate_groups` at 4 bits, what `split` runs;
- pairs: `audit.hash_pairs` at 4 bits, the audit's hash half;
- brute force: every pair's Hamming distance in NumPy chunks, the quadratic baseline the
  multi-index search replaces (up to --brute-max images), and the ratio brute / pairs;
- oof: out-of-fold logistic-regression probabilities;
- knn: `featureaudit.build_knn_graph`, the audit's k-NN graph (exact up to
  EXACT_MAX_IMAGES, an inverted-file search above), and datalab: `datalab_rows`, which builds
  that graph again and runs cleanlab's Datalab on it;
- exact: the exact k-NN graph, the quadratic baseline (up to --exact-max images), the
  inverted-file graph's time (ivf_s, forced below EXACT_MAX_IMAGES), their ratio, the
  fraction of the exact graph's neighbours that it finds (recall) and of the planted
  near-duplicate pairs (each copy and its original) that each graph holds (dup_ivf, dup_exact).

It prints one table row per size with the peak RSS of the child process before the
baselines run (the audit's own high-water mark, Datalab included). The hashes and
features are synthetic (no image is decoded here; bench/index_hashing.py times the hashing
itself), so the numbers time the search, not the decoding.

Run from the repository root:

    .venv/bin/python bench/audit.py [--sizes 1000 10000 100000] [--dim 128] [--exact-max N]
"""

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd
from cleanlab.internal.neighbor.knn_graph import create_knn_graph_and_index
from scipy.sparse import csr_matrix

from imgclf.data.audit import hash_pairs
from imgclf.data.hashing import duplicate_groups, hamming, hash_values
from imgclf.data.hdf5io import Features
from imgclf.models import featureaudit
from imgclf.models.featureaudit import (
    build_knn_graph,
    datalab_rows,
    ivf_knn_graph,
    out_of_fold_probabilities,
)

NEAR_BITS = 4


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--dim", type=int, default=128, help="feature dimensions")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--brute-max", type=int, default=20_000, help="largest brute-force run")
    parser.add_argument("--exact-max", type=int, default=20_000, help="largest exact k-NN run")
    parser.add_argument("--only", type=int, help=argparse.SUPPRESS)  # child process
    return parser.parse_args()


def synthetic(
    count: int, dim: int, classes: int, seed: int = 0
) -> tuple[pd.DataFrame, Features, np.ndarray]:
    """Hashes and features of `count` images, 1 % exact and 3 % near copies planted, and the
    (copy, original) pairs whose features stayed a small step apart."""
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 2**63, count, dtype=np.uint64) ^ (
        rng.integers(0, 2, count, dtype=np.uint64) << np.uint64(63)
    )
    pixel = np.array([f"p{index}" for index in range(count)], dtype=object)
    labels = rng.integers(0, classes, count)
    centres = rng.normal(0, 1, (classes, dim)).astype(np.float32)
    features = centres[labels] + rng.normal(0, 1, (count, dim)).astype(np.float32)
    copies = rng.permutation(count)[: count // 25]
    originals = rng.integers(0, count, len(copies))
    exact = copies[: count // 100]
    near = copies[count // 100 :]
    values[copies] = values[originals]
    pixel[exact] = pixel[originals[: len(exact)]]
    for bit_count in range(1, NEAR_BITS + 1):
        part = near[bit_count - 1 :: NEAR_BITS]
        for _ in range(bit_count):
            values[part] ^= np.uint64(1) << rng.integers(0, 64, len(part)).astype(np.uint64)
    labels[copies] = labels[originals]
    features[copies] = features[originals] + rng.normal(0, 0.01, (len(copies), dim))
    manifest = pd.DataFrame(
        {
            "path": [f"img{index:07d}.png" for index in range(count)],
            "pixel_hash": pixel,
            "phash": [f"{int(value):016x}" for value in values],
        }
    )
    names = [f"class{label}" for label in range(classes)]
    data = Features(features, labels.astype(np.int64), names, list(manifest["path"]), attrs={})
    # A copy of a copy, or of itself, is not a near pair any more.
    kept = (copies != originals) & ~np.isin(originals, copies)
    return manifest, data, np.stack([copies[kept], originals[kept]], axis=1)


def brute_force_pairs(values: np.ndarray, max_distance: int, chunk: int = 256) -> int:
    """Pairs within `max_distance` bits, by comparing every pair."""
    found = 0
    for start in range(0, len(values), chunk):
        block = values[start : start + chunk]
        distances = hamming(block[:, None], values[None, :])
        rows, columns = np.nonzero(distances <= max_distance)
        found += int((columns > rows + start).sum())
    return found


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def recall(graph: csr_matrix, exact: csr_matrix) -> float:
    """The fraction of the exact graph's neighbours that `graph` holds."""
    count = graph.shape[0]
    rows, truth = graph.indices.reshape(count, -1), exact.indices.reshape(count, -1)
    # Row-wise set intersection, k x k comparisons per row, in blocks of rows.
    found = sum(
        (rows[start : start + 4096, :, None] == truth[start : start + 4096, None, :]).any(1).sum()
        for start in range(0, count, 4096)
    )
    return float(found / exact.nnz)


def pairs_held(graph: csr_matrix, pairs: np.ndarray) -> float:
    """The fraction of (copy, original) pairs with one in the other's neighbours."""
    rows = graph.indices.reshape(graph.shape[0], -1)
    copy, original = pairs[:, 0], pairs[:, 1]
    held = (rows[copy] == original[:, None]).any(1) | (rows[original] == copy[:, None]).any(1)
    return float(held.mean())


def child(args: argparse.Namespace) -> None:
    count = args.only
    manifest, data, copies = synthetic(count, args.dim, args.classes)
    row: dict[str, float | int | None] = {"images": count}
    groups, row["groups_s"] = timed(
        duplicate_groups, manifest["pixel_hash"], manifest["phash"], NEAR_BITS
    )
    pairs, row["pairs_s"] = timed(hash_pairs, manifest, NEAR_BITS)
    row["pairs"] = len(pairs)
    probabilities, row["oof_s"] = timed(
        out_of_fold_probabilities, data, C=1.0, folds=3, max_iter=200, seed=0
    )
    (graph, _), row["knn_s"] = timed(build_knn_graph, data.features)
    _, row["datalab_s"] = timed(datalab_rows, data, probabilities, 0.13)  # graph included
    # The audit's high-water mark, before the baselines.
    row["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    exact = ivf = None
    row["ivf_s"] = row["exact_s"] = row["recall"] = row["dup_exact"] = None
    if count > featureaudit.EXACT_MAX_IMAGES:
        ivf, row["ivf_s"] = graph, row["knn_s"]
    else:
        exact = graph
        ivf, row["ivf_s"] = timed(ivf_knn_graph, data.features, featureaudit.NEIGHBOURS)
    if exact is None and count <= args.exact_max:
        (exact, _), row["exact_s"] = timed(
            create_knn_graph_and_index, data.features, n_neighbors=10, metric="cosine"
        )
    elif exact is not None:
        row["exact_s"] = row["knn_s"]
    row["dup_ivf"] = pairs_held(ivf, copies)
    if exact is not None:
        row["recall"] = recall(ivf, exact)
        row["dup_exact"] = pairs_held(exact, copies)
    row["brute_s"] = None
    if count <= args.brute_max:
        brute, row["brute_s"] = timed(brute_force_pairs, hash_values(manifest["phash"]), NEAR_BITS)
        assert brute == len(pairs), (brute, len(pairs))  # the same pairs, found faster
    row["groups"] = int((np.unique(groups, return_counts=True)[1] > 1).sum())
    print(json.dumps(row))


def cell(value: float | int | None, digits: int = 2) -> str:
    return (
        "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)
    )


def main() -> None:
    args = parse_args()
    if args.only:
        child(args)
        return
    columns = [
        "images",
        "pairs",
        "groups",
        "groups_s",
        "pairs_s",
        "brute_s",
        "oof_s",
        "knn_s",
        "datalab_s",
        "peak_rss_mib",
        "ivf_s",
        "exact_s",
    ]
    print(f"{args.dim}-d features, {args.classes} classes, near = {NEAR_BITS} bits; seconds")
    extra = ["brute/pairs", "exact/ivf", "recall", "dup_ivf", "dup_exact"]
    print(" ".join(f"{name:>12}" for name in [*columns, *extra]))
    for size in args.sizes:
        command = [
            sys.executable,
            __file__,
            "--only",
            str(size),
            "--dim",
            str(args.dim),
            "--classes",
            str(args.classes),
            "--brute-max",
            str(args.brute_max),
            "--exact-max",
            str(args.exact_max),
        ]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        row = json.loads(output.strip().splitlines()[-1])
        ratio = row["brute_s"] / row["pairs_s"] if row["brute_s"] else None
        knn_ratio = row["exact_s"] / row["ivf_s"] if row["exact_s"] else None
        print(
            " ".join(f"{cell(row[name]):>12}" for name in columns),
            f"{cell(ratio, 1):>12} {cell(knn_ratio, 1):>12}",
            " ".join(f"{cell(row[name], 4):>12}" for name in extra[2:]),
            flush=True,
        )


if __name__ == "__main__":
    main()
