"""Logistic regression on CNN features (book ch. 3): a grid search over C, stored with skops.

Models are stored in skops format, never pickle: a pickle pulled from a shared remote can
run arbitrary code when loaded. Loading accepts only the types this module writes.
"""

import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import (
    GridSearchCV,
    PredefinedSplit,
    StratifiedGroupKFold,
    StratifiedKFold,
)
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from imgclf.core.config import Params
from imgclf.core.errors import UserError
from imgclf.core.fileio import atomic_output, read_csv
from imgclf.core.integrity import check_intact
from imgclf.data.hdf5io import load_features
from imgclf.data.splitting import group_ids
from imgclf.models.modelcard import ModelCard

# Every type inside a stored model; anything else in a file is refused.
TRUSTED_TYPES = [
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
]


def build_logreg(max_iter: int, seed: int, class_weight: str = "none") -> Pipeline:
    """Standardised features, then multinomial logistic regression (lbfgs); `class_weight`
    "balanced" weighs each class by n / (classes * its count).

    Standardising makes one C grid fit every backbone, whose feature scales differ widely.
    """
    weight = None if class_weight == "none" else class_weight
    return make_pipeline(
        StandardScaler(),
        LogisticRegression(max_iter=max_iter, random_state=seed, class_weight=weight),
    )


def cv_folds(
    folds: int, seed: int, groups: np.ndarray | None
) -> StratifiedKFold | StratifiedGroupKFold:
    """Seeded stratified folds; with duplicate groups, folds that keep each group whole (a
    copy of an image on both sides of a fold would flatter that fold's score)."""
    if groups is None:
        return StratifiedKFold(folds, shuffle=True, random_state=seed)
    return StratifiedGroupKFold(folds, shuffle=True, random_state=seed)


def search_logreg(
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    *,
    grid: Sequence[float],
    select: str,
    folds: int,
    max_iter: int,
    seed: int,
    class_weight: str = "none",
    groups: np.ndarray | None = None,
) -> tuple[Pipeline, dict[str, Any]]:
    """Pick C by cross-validation on train (`select="cv"`, the book's way; folds keep each
    duplicate group of `groups` whole) or by accuracy on val (`select="val"`); return the
    model fitted on train with that C, and a summary."""
    features, labels = train
    if select == "cv":
        splitter, fit_groups = cv_folds(folds, seed, groups), groups
        data = train
    else:  # train on train, score on val: one predefined split
        splitter = PredefinedSplit(np.r_[np.full(len(labels), -1), np.zeros(len(val[1]))])
        data = (np.concatenate([features, val[0]]), np.concatenate([labels, val[1]]))
        fit_groups = None
    search = GridSearchCV(
        build_logreg(max_iter, seed, class_weight),
        {"logisticregression__C": list(grid)},
        cv=splitter,
        n_jobs=-1,
        refit=False,
    )
    search.fit(*data, groups=fit_groups)
    best_c = search.best_params_["logisticregression__C"]
    model = build_logreg(max_iter, seed, class_weight).set_params(logisticregression__C=best_c)
    model.fit(features, labels)
    summary = {
        "C": float(best_c),
        "score": round(float(search.best_score_), 6),
        "select": select,
        # A list: DVC shows no list in `metrics show`/`exp show`, so the metrics stay narrow
        # while the report can still show the whole search.
        "grid": [
            {"C": float(c), "score": round(float(score), 6)}
            for c, score in zip(grid, search.cv_results_["mean_test_score"], strict=True)
        ],
    }
    return model, summary


def train_logreg(
    params: Params,
    train_path: Path,
    val_path: Path,
    backbone: Path,
    model_path: Path,
    splits: Path,
) -> dict[str, Any]:
    """The logreg stage's work: `search_logreg` on the train and val features (folds keep
    the duplicate groups of `splits`, splits.csv, whole), the model saved with its card
    (which names `backbone`, the features' backbone). Returns the search's summary."""
    train, val = load_features(train_path), load_features(val_path)
    groups = group_ids(read_csv(splits, ["path"]), train.paths, splits)
    if val.label_names != train.label_names:
        raise UserError(
            f"{val_path}: classes {val.label_names}, but {train_path} has {train.label_names}; "
            "rerun the features stages (dvc repro)"
        )
    settings = params.logreg
    model, summary = search_logreg(
        (train.features, train.labels),
        (val.features, val.labels),
        grid=settings.C,
        select=settings.select,
        folds=settings.folds,
        max_iter=settings.max_iter,
        seed=params.base.seed,
        class_weight=settings.class_weight,
        groups=groups,
    )
    body = ModelCard.read(backbone)
    card = ModelCard(
        kind="logreg",
        model="logreg",
        label_names=train.label_names,
        # Relative to the model's folder, so a cloned or moved repository still resolves it.
        backbone=Path(os.path.relpath(backbone, model_path.parent)).as_posix(),
        pooling=train.attrs["pooling"],
        interpolation=train.attrs["interpolation"],
        arch=body.arch,
        weights=body.weights,
        image_size=body.image_size,
    )
    save_logreg(model, model_path, card)
    return summary


def save_logreg(model: Pipeline, path: Path | str, card: ModelCard) -> None:
    """Write the model in skops format with its card (see `modelcard`) inside."""
    with atomic_output(path) as temporary:
        sio.dump(model, temporary)
        card.write(temporary)


def load_logreg(path: Path | str) -> Pipeline:
    """Load a model written by `save_logreg`, refusing any type it would not contain."""
    check_intact(path)
    try:
        untrusted = [
            name for name in sio.get_untrusted_types(file=path) if name not in TRUSTED_TYPES
        ]
        if untrusted:
            raise UserError(f"{path}: refusing to load untrusted type(s) {', '.join(untrusted)}")
        model = sio.load(path, trusted=TRUSTED_TYPES)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:  # missing, corrupt
        raise UserError(f"{path}: cannot load the model ({error})") from None
    steps = [type(step).__name__ for _, step in getattr(model, "steps", [])]
    if not isinstance(model, Pipeline) or steps != ["StandardScaler", "LogisticRegression"]:
        raise UserError(f"{path}: not an imgclf logistic-regression model ({type(model)})")
    return model
