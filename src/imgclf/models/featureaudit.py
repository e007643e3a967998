"""The audit's model-based half: likely label errors, near-duplicates the hashes miss (crops,
recolouring) and outliers, found by cleanlab's Datalab from the backbone's features and
out-of-fold predicted probabilities.

The probabilities come from the pipeline's own logistic regression (models/logistic.py, with
the C that the `logreg` stage chose), fitted k times, each time predicting the fold it did not
see: confident learning needs probabilities for images the model was not trained on.

Datalab's near-duplicate and outlier checks read a k-nearest-neighbour graph of the features.
Datalab would build it exactly, comparing every pair (quadratic in images); `build_knn_graph`
builds the same graph exactly up to `EXACT_MAX_IMAGES` and above that with an inverted-file
search, which compares each image only with the images of the few clusters nearest to it.
"""

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from cleanlab import Datalab
from cleanlab.internal.neighbor.knn_graph import correct_knn_graph, create_knn_graph_and_index
from cleanlab.internal.neighbor.metric import decide_default_metric
from cleanlab.typing import Metric
from scipy.sparse import csr_matrix
from sklearn.cluster import KMeans
from sklearn.model_selection import cross_val_predict
from sklearn.preprocessing import normalize
from threadpoolctl import threadpool_limits

from imgclf.core.errors import UserError
from imgclf.data.hdf5io import Features, load_features
from imgclf.models.logistic import build_logreg, cv_folds

NEIGHBOURS = 10  # the k of Datalab's near_duplicate and outlier checks (cleanlab's default)
# Up to here the exact search takes seconds (as Datalab's own did), and small datasets (the
# demo, the tests) keep the graph Datalab would have built, to the bit.
EXACT_MAX_IMAGES = 20_000
# Clusters each image is compared in: sqrt(N) clusters of sqrt(N) images make the search
# PROBES * N^1.5 distances instead of N^2 (20 times fewer at 100,000 images). A near-duplicate
# is a tiny step from its original, so it lies in the original's cluster or one beside it;
# bench/audit.py measures how many of the exact neighbours and planted pairs are found.
PROBES = 16
SAMPLE_PER_CLUSTER = 64  # k-means is fitted on a sample: clusters need not be optimal, only even
BLOCK = 1 << 22  # distances held at once (16 MiB of float32), whatever N
EMPTY = np.iinfo(np.int64).max  # no neighbour yet (see `_search`)


def load_labelled_features(files: Sequence[Path]) -> Features:
    """The features files of every split, one after the other."""
    loaded = [load_features(file) for file in files]
    for file, features in zip(files, loaded, strict=True):
        if features.label_names != loaded[0].label_names:
            raise UserError(
                f"{file}: classes {features.label_names}, but {files[0]} has "
                f"{loaded[0].label_names}; rerun the features stages (dvc repro)"
            )
    return Features(
        features=np.concatenate([features.features for features in loaded]),
        labels=np.concatenate([features.labels for features in loaded]),
        label_names=loaded[0].label_names,
        paths=[path for features in loaded for path in features.paths],
        attrs={},
    )


def out_of_fold_probabilities(
    data: Features,
    *,
    C: float,
    folds: int,
    max_iter: int,
    seed: int,
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """(N, C) probabilities, each from a logistic regression that never saw that image, nor
    (with `groups`) any image of its duplicate group."""
    model = build_logreg(max_iter, seed).set_params(logisticregression__C=C)
    probabilities = cross_val_predict(
        model,
        data.features,
        data.labels,
        groups=groups,
        cv=cv_folds(folds, seed, groups),
        method="predict_proba",
        n_jobs=-1,
    )
    return probabilities.astype(np.float32)


def find_datalab_issues(
    data: Features, probabilities: np.ndarray, near_threshold: float, seed: int = 0
) -> Datalab:
    """Datalab's label, near-duplicate, outlier and class-imbalance checks, on our k-NN graph
    (`seed` draws the approximate search's clusters, above EXACT_MAX_IMAGES)."""
    graph, metric = build_knn_graph(data.features, seed)
    lab = Datalab(data={"label": data.labels}, label_name="label", verbosity=0)
    # Given the graph and not the features, Datalab searches nothing itself; given the metric,
    # it keeps the outlier check's rounding correction and records the metric it would have
    # chosen (it recomputes the graph only if a check's metric differs from the recorded one).
    lab.find_issues(
        knn_graph=graph,
        pred_probs=probabilities,
        issue_types={
            "label": {},
            "near_duplicate": {"threshold": near_threshold, "metric": metric},
            "outlier": {"metric": metric},
            "class_imbalance": {},
        },
    )
    return lab


def datalab_rows(
    data: Features, probabilities: np.ndarray, near_threshold: float, seed: int = 0
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Audit rows (path, issue, score, other, suggested) for label errors, feature
    near-duplicates and outliers, and Datalab's count of issues per type."""
    lab = find_datalab_issues(data, probabilities, near_threshold, seed)
    issues = lab.get_issues()
    paths = np.asarray(data.paths)
    names = np.asarray(data.label_names)
    label = issues[issues["is_label_issue"]]
    frames = [
        pd.DataFrame(
            {
                "path": paths[label.index],
                "issue": "label_error",
                "score": label["label_score"].to_numpy(),
                "suggested": names[probabilities[label.index].argmax(axis=1)],
            }
        ),
        _near_duplicate_rows(lab, issues, paths),
    ]
    outlier = issues[issues["is_outlier_issue"]]
    frames.append(
        pd.DataFrame(
            {"path": paths[outlier.index], "issue": "outlier", "score": outlier["outlier_score"]}
        )
    )
    summary = lab.get_issue_summary().set_index("issue_type")["num_issues"]
    return pd.concat(frames, ignore_index=True), {
        f"datalab_{name}": int(count) for name, count in summary.items()
    }


def _near_duplicate_rows(lab: Datalab, issues: pd.DataFrame, paths: np.ndarray) -> pd.DataFrame:
    """One `near_duplicate` row per feature pair (path < other), scored by Datalab."""
    sets = lab.get_info("near_duplicate")["near_duplicate_sets"]
    scores = issues["near_duplicate_score"].to_numpy()
    rows = [
        (*sorted((paths[index], paths[other])), float(scores[index]))
        for index, members in enumerate(sets)
        for other in members
    ]
    frame = pd.DataFrame(rows, columns=["path", "other", "score"]).assign(issue="near_duplicate")
    return frame.sort_values("score").drop_duplicates(["path", "other"])


def build_knn_graph(features: np.ndarray, seed: int = 0) -> tuple[csr_matrix, Metric]:
    """Datalab's k-nearest-neighbour graph (N x N CSR, each row's k distances ascending, exact
    duplicates at an explicit 0) in the metric Datalab would choose, and that metric."""
    metric = decide_default_metric(features)  # cosine above 3 dimensions
    k = min(NEIGHBOURS, len(features) - 1)
    # Euclidean means 3 dimensions or fewer, where scikit-learn's k-d tree is already N log N.
    if len(features) > EXACT_MAX_IMAGES and metric == "cosine":
        return ivf_knn_graph(features, k, seed), metric
    with threadpool_limits(limits=1):  # as in ivf_knn_graph: the same bits on any core count
        graph, _ = create_knn_graph_and_index(features, n_neighbors=k, metric=metric)
    return graph, metric


def ivf_knn_graph(features: np.ndarray, k: int, seed: int = 0) -> csr_matrix:
    """Approximate cosine k-NN graph: each image is compared, exactly and in full dimension,
    with the images of its `PROBES` nearest k-means clusters.

    An inverted file is what FAISS's IndexIVFFlat does; built from scikit-learn's k-means and
    NumPy products, it needs no new dependency. It is deterministic: ties go to the lower image
    index, and everything runs on one thread, because OpenBLAS's products (and k-means's sums)
    change in their last bits with the thread count, and a near-duplicate's score with them.
    (A second core saves little: most of the time goes to NumPy's single-threaded partition.)"""
    unit = normalize(features).astype(np.float32)  # cosine distance = 1 - dot product
    with threadpool_limits(limits=1):
        probes = _probe_lists(unit, seed)
        best = np.full((len(unit), k), EMPTY)
        clusters = probes.max() + 1
        # The images in each cluster (their nearest centre), and the images that probe it.
        members = np.argsort(probes[:, 0], kind="stable")
        member_bounds = np.searchsorted(probes[members, 0], np.arange(clusters + 1))
        askers = np.argsort(probes, axis=None, kind="stable") // probes.shape[1]
        asker_bounds = np.searchsorted(np.sort(probes, axis=None), np.arange(clusters + 1))
        for cluster in range(clusters):
            inside = members[member_bounds[cluster] : member_bounds[cluster + 1]]
            _search(unit, askers[asker_bounds[cluster] : asker_bounds[cluster + 1]], inside, best)
        # An image whose probed clusters hold under k others (tiny clusters) searches them all.
        short = np.flatnonzero((best == EMPTY).any(axis=1))
        best[short] = EMPTY
        _search(unit, short, np.arange(len(unit)), best)
    best.sort(axis=1)
    distances = (best >> 32).astype(np.int32).view(np.float32)
    graph = csr_matrix(
        (distances.ravel(), (best & 0xFFFFFFFF).ravel(), np.arange(0, best.size + 1, k)),
        (len(unit), len(unit)),
    )
    return correct_knn_graph(features, graph)


def _probe_lists(unit: np.ndarray, seed: int) -> np.ndarray:
    """(N, PROBES) the k-means clusters each row is compared in, its own (nearest) first."""
    clusters = math.isqrt(len(unit))
    sample = np.random.default_rng(seed).choice(
        len(unit), min(len(unit), SAMPLE_PER_CLUSTER * clusters), replace=False
    )
    kmeans = KMeans(clusters, n_init=1, max_iter=10, random_state=seed)
    centres = kmeans.fit(unit[np.sort(sample)]).cluster_centers_.astype(np.float32)
    return _nearest_centres(unit, centres, min(PROBES, clusters))


def _nearest_centres(unit: np.ndarray, centres: np.ndarray, probes: int) -> np.ndarray:
    """(N, probes) indices of each row's nearest centres, nearest first, in row blocks."""
    squared = (centres**2).sum(axis=1)
    rows = max(1, BLOCK // len(centres))
    nearest = []
    for start in range(0, len(unit), rows):
        scores = squared - 2 * unit[start : start + rows] @ centres.T
        part = np.argpartition(scores, probes - 1, axis=1)[:, :probes]
        ranks = np.argsort(np.take_along_axis(scores, part, 1), axis=1, kind="stable")
        nearest.append(np.take_along_axis(part, ranks, 1))
    return np.concatenate(nearest)


def _search(unit: np.ndarray, asking: np.ndarray, inside: np.ndarray, best: np.ndarray) -> None:
    """Merge the distances from the `asking` rows to the `inside` rows into their k best.

    A neighbour is one int64, its float32 distance's bits above its index: non-negative floats
    order as their bits do, so one integer partition finds the nearest, ties by index (and
    np.partition is several times faster than np.argpartition here)."""
    rows = max(1, BLOCK // max(1, len(inside)))
    for start in range(0, len(asking), rows):
        _merge_block(unit, asking[start : start + rows], inside, best)


def _merge_block(
    unit: np.ndarray, asking: np.ndarray, inside: np.ndarray, best: np.ndarray
) -> None:
    """`_search` on one block of at most `BLOCK` distances."""
    block = np.maximum(1 - unit[asking] @ unit[inside].T, 0)  # clipped, as scikit-learn does
    block[asking[:, None] == inside[None, :]] = np.inf  # an image is not its own neighbour
    keys = (block.view(np.int32).astype(np.int64) << 32) | inside
    k = best.shape[1]
    if keys.shape[1] > k:
        keys = np.partition(keys, k - 1, axis=1)[:, :k]
    merged = np.concatenate([best[asking], keys], axis=1)
    best[asking] = np.partition(merged, k - 1, axis=1)[:, :k]
