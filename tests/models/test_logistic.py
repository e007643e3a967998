"""Logistic regression: grid search picks C, skops round trip, untrusted files refused."""

from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from imgclf.core.errors import UserError
from imgclf.models.logistic import cv_folds, load_logreg, save_logreg, search_logreg
from imgclf.models.modelcard import ModelCard


def blobs(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    # Imbalanced on purpose: a tiny C then predicts the majority class and scores worse.
    labels = np.repeat([0, 1, 2], [count * 6 // 9, count * 2 // 9, count - count * 8 // 9])
    centres = np.array([[0, 0, 0, 0], [3, 0, 3, 0], [0, 3, 0, 3]], np.float32)
    return (centres[labels] + rng.normal(0, 1.0, (count, 4))).astype(np.float32), labels


@pytest.mark.parametrize("select", ["cv", "val"])
def test_search_picks_c_and_fits_on_train(select: str) -> None:
    model, summary = search_logreg(
        blobs(90, 0),
        blobs(30, 1),
        grid=[1e-4, 1.0, 100.0],
        select=select,
        folds=3,
        max_iter=500,
        seed=0,
    )
    assert summary["C"] in (1.0, 100.0) and summary["select"] == select
    assert [row["C"] for row in summary["grid"]] == [1e-4, 1.0, 100.0]
    assert summary["score"] == max(row["score"] for row in summary["grid"])
    features, labels = blobs(60, 2)
    assert (model.predict(features) == labels).mean() > 0.8
    assert summary["C"] == model.named_steps["logisticregression"].C


def test_cross_validation_keeps_duplicate_groups_whole() -> None:
    """With duplicate groups, no fold trains on a copy of an image it scores (plain
    stratified folds did: a fold's score then counts images it has seen)."""
    features, labels = blobs(90, 0)
    groups = np.arange(90) // 3  # thirty groups of three copies
    for train, held in cv_folds(3, 0, groups).split(features, labels, groups):
        assert not set(groups[train]) & set(groups[held])
    plain = cv_folds(3, 0, None).split(features, labels)
    assert any(set(groups[train]) & set(groups[held]) for train, held in plain)
    _, summary = search_logreg(
        (features, labels),
        blobs(30, 1),
        grid=[1.0],
        select="cv",
        folds=3,
        max_iter=500,
        seed=0,
        groups=groups,
    )
    assert summary["C"] == 1.0


def test_round_trip(tmp_path: Path) -> None:
    model, _ = search_logreg(
        blobs(60, 0), blobs(30, 1), grid=[1.0], select="cv", folds=2, max_iter=200, seed=0
    )
    card = ModelCard(
        kind="logreg", label_names=("a", "b"), image_size=(8, 8), backbone="b.keras", pooling="avg"
    )
    save_logreg(model, tmp_path / "m.skops", card)
    loaded = load_logreg(tmp_path / "m.skops")
    assert ModelCard.read(tmp_path / "m.skops") == card
    features, _ = blobs(10, 3)
    np.testing.assert_array_equal(loaded.predict_proba(features), model.predict_proba(features))


def test_untrusted_types_are_refused(tmp_path: Path) -> None:
    sneaky = make_pipeline(FunctionTransformer(np.exp), KNeighborsClassifier(1))
    sneaky.fit(*blobs(9, 0))
    sio.dump(sneaky, tmp_path / "sneaky.skops")
    with pytest.raises(UserError, match="refusing to load untrusted type"):
        load_logreg(tmp_path / "sneaky.skops")


def test_other_models_and_broken_files_are_refused(tmp_path: Path) -> None:
    sio.dump(KNeighborsClassifier(1).fit(*blobs(9, 0)), tmp_path / "knn.skops")
    with pytest.raises(UserError, match=r"(untrusted|not an imgclf)"):
        load_logreg(tmp_path / "knn.skops")
    (tmp_path / "broken.skops").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="cannot load the model"):
        load_logreg(tmp_path / "broken.skops")
    with pytest.raises(UserError, match="cannot load the model"):
        load_logreg(tmp_path / "missing.skops")


def test_balanced_class_weight_lifts_the_minority_class() -> None:
    rng = np.random.default_rng(3)
    labels = np.repeat([0, 1], [190, 10])
    features = (labels[:, None] * 1.2 + rng.normal(0, 1.0, (200, 2))).astype(np.float32)
    recalls = {}
    for weight in ("none", "balanced"):
        model, _ = search_logreg(
            (features, labels),
            (features, labels),
            grid=[1.0],
            select="val",
            folds=3,
            max_iter=500,
            seed=0,
            class_weight=weight,
        )
        recalls[weight] = (model.predict(features[labels == 1]) == 1).mean()
        expected = None if weight == "none" else "balanced"
        assert model.named_steps["logisticregression"].class_weight == expected
    assert recalls["balanced"] > recalls["none"] + 0.3
