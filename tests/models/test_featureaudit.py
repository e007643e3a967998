"""The audit on a folder with planted duplicates and label errors: it finds every planted
kind and flags no clean image (thumbnails stand in for the backbone's features)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cleanlab import Datalab
from cleanlab.datalab.internal.issue_manager import knn_graph_helpers
from cleanlab.internal.neighbor.knn_graph import create_knn_graph_and_index
from scipy.sparse import csr_matrix
from threadpoolctl import threadpool_limits

from imgclf.data.hdf5io import Features
from imgclf.data.indexing import build_index
from imgclf.models import featureaudit
from imgclf.models.featureaudit import (
    datalab_rows,
    find_datalab_issues,
    ivf_knn_graph,
    load_labelled_features,
    out_of_fold_probabilities,
)
from support.params import make_params
from support.planted import KINDS, recall_and_false_flags, run_audit, write_planted_folder


def test_audit_finds_every_planted_kind_and_no_clean_image(tmp_path: Path) -> None:
    root = tmp_path / "images"
    planted = write_planted_folder(root, per_class=20, each=3)
    manifest = build_index(make_params(data={"source": str(root)}).data).manifest
    rows = run_audit(root, manifest, near_distance=0)
    recall, false_flags = recall_and_false_flags(rows, planted, manifest)
    assert recall == dict.fromkeys(KINDS, 1.0)
    assert false_flags == 0


def test_a_crop_split_cannot_group_is_reported_as_a_leak(tmp_path: Path) -> None:
    # pHash moves 10+ bits under a 90 % crop, so `split` leaves crops apart: the audit's
    # feature search must then say when a crop and its original sit in different splits.
    root = tmp_path / "images"
    planted = write_planted_folder(root, per_class=20, each=3)
    manifest = build_index(make_params(data={"source": str(root)}).data).manifest
    copies = {item.path: item.kind for item in planted if item.kind in ("crop", "exact")}
    splits = ["test" if path in copies else "train" for path in manifest["path"]]
    rows = run_audit(root, manifest, near_distance=0, splits=splits)
    leaks = rows[rows["issue"] == "split_leak"]
    leaked = {frozenset(pair) for pair in zip(leaks["path"], leaks["other"], strict=True)}
    for item in planted:
        if item.kind in ("crop", "exact"):
            assert frozenset((item.path, item.other)) in leaked, item
    assert leaked <= {frozenset((item.path, item.other)) for item in planted}


def test_label_errors_come_with_the_suggested_class() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 30)
    features = (np.eye(3)[labels] * 4 + rng.normal(0, 0.5, (90, 3))).astype(np.float32)
    given = labels.copy()
    given[[5, 40]] = [2, 0]  # a 0 filed as 2, a 1 filed as 0
    paths = [f"img{i:02d}" for i in range(90)]
    data = Features(features, given, ["x", "y", "z"], paths, attrs={})
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


def planted_features(
    count: int,
    dim: int = 32,
    classes: int = 20,
    pairs: int = 40,
    seed: int = 0,
    spread: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features in Gaussian class clusters (centres 1 apart per dimension), labels, and
    (pairs, 2) planted near-duplicates: each copy a 1e-3 step from its original."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, count)
    features = rng.normal(0, 1, (classes, dim))[labels] + rng.normal(0, spread, (count, dim))
    planted = rng.choice(count, (pairs, 2), replace=False)
    features[planted[:, 1]] = features[planted[:, 0]] + rng.normal(0, 1e-3, (pairs, dim))
    labels[planted[:, 1]] = labels[planted[:, 0]]
    return features.astype(np.float32), labels, planted


OUTLIERS = [20, 21, 22]


def neighbours(graph: csr_matrix) -> np.ndarray:
    return graph.indices.reshape(graph.shape[0], -1)


def recall(graph: csr_matrix, exact: csr_matrix) -> float:
    """The fraction of the exact graph's neighbours that `graph` found."""
    found = [
        np.intersect1d(row, truth).size
        for row, truth in zip(neighbours(graph), neighbours(exact), strict=True)
    ]
    return sum(found) / exact.nnz


def test_inverted_file_graph_finds_the_planted_pairs_and_nearly_every_neighbour(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    features, _, planted = planted_features(4000)  # 63 clusters, 16 probed
    exact, _ = create_knn_graph_and_index(features, n_neighbors=10, metric="cosine")
    graph = ivf_knn_graph(features, 10)
    assert graph.shape == (4000, 4000) and graph.nnz == 4000 * 10
    rows = graph.data.reshape(4000, -1)
    assert (np.diff(rows, axis=1) >= 0).all()  # ascending, as Datalab reads them
    assert not (neighbours(graph) == np.arange(4000)[:, None]).any()  # no image its own
    assert (neighbours(graph)[planted[:, 1], 0] == planted[:, 0]).all()
    assert (neighbours(graph)[planted[:, 0], 0] == planted[:, 1]).all()
    assert recall(graph, exact) > 0.97
    # The distances of the neighbours found are the exact ones (up to float32 rounding).
    assert np.allclose(rows[:, 0], exact.data.reshape(4000, -1)[:, 0], atol=1e-6, rtol=1e-3)
    # Even probing 2 clusters of 63, a copy's nearest neighbour is its original.
    monkeypatch.setattr(featureaudit, "PROBES", 2)
    coarse = ivf_knn_graph(features, 10)
    assert (neighbours(coarse)[planted[:, 1], 0] == planted[:, 0]).all()
    assert recall(coarse, exact) < recall(graph, exact)


def test_inverted_file_graph_is_the_same_on_any_thread_count() -> None:
    features, _, _ = planted_features(3000, dim=64)
    features[7] = features[8]  # an exact pair: ties go by index, then cleanlab's correction
    graphs = []
    for threads in (1, 2, 2):
        with threadpool_limits(limits=threads):
            graphs.append(ivf_knn_graph(features, 10))
    for graph in graphs[1:]:
        assert (graph != graphs[0]).nnz == 0
        assert graph.data.tobytes() == graphs[0].data.tobytes()
        assert graph.indices.tobytes() == graphs[0].indices.tobytes()
    assert graphs[0][7, 8] == 0 and neighbours(graphs[0])[8, 0] == 7


def audited(count: int) -> tuple[Features, np.ndarray, set[tuple[str, str]]]:
    """Planted features with 3 far outliers (pointing away from every class), their
    probabilities, and the planted near-duplicate pairs (paths)."""
    features, labels, planted = planted_features(count, 16, classes=4, pairs=5, seed=1)
    noise = np.random.default_rng(2).normal(0, 0.5, (3, 16))
    features[OUTLIERS] = -3 * features.mean(axis=0) + noise
    paths = [f"img{i:04d}" for i in range(count)]
    data = Features(features, labels, list("abcd"), paths, attrs={})
    probabilities = out_of_fold_probabilities(data, C=1.0, folds=3, max_iter=500, seed=0)
    pairs = {
        tuple(sorted((paths[a], paths[b]))) for a, b in planted if {a, b}.isdisjoint(OUTLIERS)
    }
    return data, probabilities, pairs


def test_datalab_on_our_graph_is_datalab_on_the_features(monkeypatch: pytest.MonkeyPatch) -> None:
    data, probabilities, _ = audited(400)
    reference = Datalab(data={"label": data.labels}, label_name="label", verbosity=0)
    reference.find_issues(  # what datalab_rows ran before it built the graph itself
        features=data.features,
        pred_probs=probabilities,
        issue_types={
            "label": {},
            "near_duplicate": {"threshold": 0.13},
            "outlier": {},
            "class_imbalance": {},
        },
    )

    def search(*args: object, **kwargs: object) -> None:
        raise AssertionError("Datalab searched neighbours itself")

    monkeypatch.setattr(knn_graph_helpers, "create_knn_graph_and_index", search)
    lab = find_datalab_issues(data, probabilities, near_threshold=0.13)
    pd.testing.assert_frame_equal(lab.get_issues(), reference.get_issues(), check_exact=True)
    for name in ("near_duplicate", "outlier"):
        assert lab.get_info(name)["metric"] == "cosine"
    sets = lab.get_info("near_duplicate")["near_duplicate_sets"]
    expected = reference.get_info("near_duplicate")["near_duplicate_sets"]
    assert [list(s) for s in sets] == [list(s) for s in expected]


def test_datalab_on_the_inverted_file_graph_finds_the_planted_issues(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data, probabilities, planted = audited(400)
    exact, _ = datalab_rows(data, probabilities, near_threshold=0.13)
    monkeypatch.setattr(featureaudit, "EXACT_MAX_IMAGES", 0)
    monkeypatch.setattr(featureaudit, "PROBES", 2)  # of 20 clusters: the graph is approximate
    rows, _ = datalab_rows(data, probabilities, near_threshold=0.13)
    flagged = [
        {
            issue: set(zip(group["path"], group["other"], strict=True))
            for issue, group in frame.groupby("issue")
        }
        for frame in (exact, rows)
    ]
    for found in flagged:
        assert found["near_duplicate"] == planted
        assert {path for path, _ in found["outlier"]} >= {f"img{i:04d}" for i in OUTLIERS}
